"""`Architecture`: a body of layers (the head is implicit) or a named reference classifier."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from nasdb.schema.errors import InvalidArchitecture

from ._layers import Layer, _Layer, layer_from_dict

#: The reference classifiers (AutoCl), built by `nasdb.trainers.build`; names are stable.
REFERENCE_NAMES: tuple[str, ...] = ("cnn", "vgg", "alexnet", "resnet18", "densenet", "mobilenet")


@dataclass(frozen=True)
class Architecture:
    """A sequential classifier body, or a reference classifier by name.

    ``layers`` is the body; the head (flatten when the tensor is still 3-D, then
    ``Dense(num_classes)``) is always added by the builder. A reference has no layers. Instances
    are immutable and hashable, so equal architectures compare and deduplicate as equal.
    """

    layers: tuple[Layer, ...] = ()
    reference: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        for index, layer in enumerate(self.layers):
            if not isinstance(layer, _Layer):
                raise InvalidArchitecture(f"layer {index}: expected a layer, got {layer!r}")
        if self.reference is not None:
            if self.reference not in REFERENCE_NAMES:
                raise InvalidArchitecture(
                    f"unknown reference classifier {self.reference!r}; known: "
                    f"{', '.join(REFERENCE_NAMES)}"
                )
            if self.layers:
                raise InvalidArchitecture(
                    f"reference classifier {self.reference!r} cannot have layers; "
                    "use either layers or a reference"
                )

    @classmethod
    def of(cls, *layers: Layer) -> Architecture:
        """Shorthand: ``Architecture.of(Conv2D(32, 3), Activation("relu"))``."""
        return cls(tuple(layers))

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of docs/contracts.md: ``{"layers": [...], "reference": ...}``."""
        return {"layers": [layer.to_dict() for layer in self.layers], "reference": self.reference}

    def to_json(self) -> str:
        """Canonical JSON: compact, keys in contract order; equal architectures give equal text."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, data: str | bytes | dict[str, Any]) -> Architecture:
        """Parse the contract JSON (text or an already-decoded object).

        Raises `InvalidArchitecture` for malformed JSON, unknown top-level keys, and any bad
        layer (the message names the layer's index).
        """
        if isinstance(data, str | bytes):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as e:
                raise InvalidArchitecture(f"architecture is not valid JSON: {e}") from e
        if not isinstance(data, dict):
            raise InvalidArchitecture(
                f'architecture must be a JSON object {{"layers": [...], "reference": ...}}, '
                f"got {data!r}"
            )
        unknown = sorted(set(data) - {"layers", "reference"})
        if unknown:
            raise InvalidArchitecture(
                f"architecture has unknown key {unknown[0]!r}; it takes layers and reference"
            )
        raw_layers = data.get("layers", [])
        if not isinstance(raw_layers, list):
            raise InvalidArchitecture(f"architecture layers must be a list, got {raw_layers!r}")
        reference = data.get("reference")
        if reference is not None and not isinstance(reference, str):
            raise InvalidArchitecture(f"architecture reference must be a string, got {reference!r}")
        layers = tuple(layer_from_dict(item, i) for i, item in enumerate(raw_layers))
        return cls(layers, reference)

    @property
    def layer_types(self) -> list[str]:
        """One type name per body layer, e.g. ``["Conv2D", "Activation", "Dense"]``."""
        return [layer.TYPE for layer in self.layers]

    def glyph(self, num_classes: int) -> str:
        """A compact one-line summary, e.g. ``C32k3-relu-P2-C64k3-relu-GAP-D10``.

        Codes: ``C{filters}k{kernel}`` plus ``s{stride}`` when the stride is not 1 and ``p`` for
        same padding; ``P{size}`` max pool and ``A{size}`` average pool, plus ``s{stride}`` when
        the stride differs from the size; ``Dr{rate}``; ``BN``; ``F``; ``GAP``; ``D{units}``;
        activations by name. The head shows as ``D{num_classes}``. A reference is its name.
        """
        if self.reference is not None:
            return self.reference
        return "-".join([*(layer.code() for layer in self.layers), f"D{num_classes}"])

    def __str__(self) -> str:
        if self.reference is not None:
            return f"reference {self.reference}"
        return " -> ".join(str(layer) for layer in self.layers) or "(empty body)"

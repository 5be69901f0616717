"""Architectures as token sequences, and the vocabulary that numbers the tokens.

One layer dict (docs/contracts.md, "Architecture JSON") becomes one token that carries its type and
its hyperparameters, as in Sankaran et al.: ``Conv2D_32_3_1_valid``, ``MaxPool2D_2_2``,
``AvgPool2D_2_2``, ``Dense_128``, ``Dropout_0.25``, ``BatchNorm``, ``Flatten``, ``GlobalAvgPool``,
the composite blocks ``ConvBlock_32_3_1_relu``, ``SepConv_64_3_2_relu``, ``Residual_32_3_1_gelu``,
and an ``Activation`` becomes the bare function name (``relu``). A layer of a type this code does
not know becomes ``UNK`` (never an error); a known layer that lacks a field it needs is an error. A
reference classifier (``{"layers": [], "reference": "resnet18"}``) is the single token
``REF_resnet18``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from nasdb.schema.errors import InvalidRequest

__all__ = [
    "BOS",
    "EOS",
    "PAD",
    "UNK",
    "Architecture",
    "Vocabulary",
    "layer_token",
    "tokenize",
]

UNK = "UNK"
PAD = "<pad>"
BOS = "<s>"
EOS = "</s>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, UNK, BOS, EOS)

#: An architecture as callers hold it: the body's layer dicts, or the whole architecture JSON.
Architecture = Sequence[Mapping[str, Any]] | Mapping[str, Any]

_FIELDS: dict[str, tuple[str, ...]] = {
    "Conv2D": ("filters", "kernel", "stride", "padding"),
    "MaxPool2D": ("size", "stride"),
    "AvgPool2D": ("size", "stride"),
    "Dense": ("units",),
    "Dropout": ("rate",),
    "Activation": ("fn",),
    "BatchNorm": (),
    "Flatten": (),
    "GlobalAvgPool": (),
    "ConvBlock": ("filters", "kernel", "stride", "fn"),
    "SepConv": ("filters", "kernel", "stride", "fn"),
    "Residual": ("filters", "kernel", "stride", "fn"),
}


def _number(value: Any) -> str:
    """Format a hyperparameter value compactly and stably (``0.25``, ``32``, ``same``)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.6g}"
    return str(value)


def layer_token(layer: Mapping[str, Any], index: int = 0) -> str:
    """Return the token of one layer dict.

    Unknown layer types give ``UNK``. Raises `InvalidRequest` when ``layer`` is not a mapping with
    a ``type``, or when a known type lacks one of its fields (the message names the layer index).
    """
    if not isinstance(layer, Mapping) or "type" not in layer:
        raise InvalidRequest(
            f"layer {index} is not a layer dict with a 'type' (got {layer!r}); "
            "see docs/contracts.md, 'Architecture JSON'"
        )
    kind = str(layer["type"])
    fields = _FIELDS.get(kind)
    if fields is None:
        return UNK
    missing = [name for name in fields if name not in layer]
    if missing:
        raise InvalidRequest(
            f"layer {index} ({kind}) is missing {', '.join(repr(m) for m in missing)}; "
            "see docs/contracts.md, 'Architecture JSON'"
        )
    if kind == "Activation":
        return str(layer["fn"])
    return "_".join([kind, *(_number(layer[name]) for name in fields)])


def tokenize(architecture: Architecture) -> list[str]:
    """Return the token sequence of an architecture (layer list or architecture JSON dict).

    A reference classifier (non-empty ``reference``) is one token ``REF_<name>``; an empty body is
    an empty list. Raises `InvalidRequest` for input that is neither form.
    """
    if isinstance(architecture, Mapping):
        reference = architecture.get("reference")
        if reference:
            return [f"REF_{reference}"]
        if "layers" not in architecture:
            raise InvalidRequest(
                "an architecture dict needs 'layers' (and optionally 'reference'); "
                f"got keys {sorted(architecture)}"
            )
        layers = architecture["layers"]
    else:
        layers = architecture
    if isinstance(layers, str | bytes) or not isinstance(layers, Sequence):
        raise InvalidRequest(
            f"an architecture is a list of layer dicts; got {type(layers).__name__}"
        )
    return [layer_token(layer, i) for i, layer in enumerate(layers)]


class Vocabulary:
    """A fixed numbering of tokens; tokens outside it map to ``UNK``.

    The special tokens come first: ``<pad>`` = 0, ``UNK`` = 1, ``<s>`` = 2, ``</s>`` = 3. Instances
    are immutable after construction and safe to share between threads.
    """

    def __init__(self, tokens: Iterable[str]) -> None:
        ordered: list[str] = list(SPECIAL_TOKENS)
        seen = set(ordered)
        for token in tokens:
            if token not in seen:
                seen.add(token)
                ordered.append(token)
        self._tokens: tuple[str, ...] = tuple(ordered)
        self._index: dict[str, int] = {t: i for i, t in enumerate(self._tokens)}

    @classmethod
    def build(cls, sequences: Iterable[Sequence[str]]) -> Vocabulary:
        """Build a vocabulary of every token in ``sequences``, sorted for a stable numbering."""
        found = {token for sequence in sequences for token in sequence}
        return cls(sorted(found - set(SPECIAL_TOKENS)))

    @property
    def tokens(self) -> tuple[str, ...]:
        """All tokens, in index order (specials first)."""
        return self._tokens

    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._index

    def index(self, token: str) -> int:
        """The index of ``token``, or of ``UNK`` when it is not in the vocabulary."""
        return self._index.get(token, self._index[UNK])

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Indices of ``tokens`` (unknown ones as ``UNK``)."""
        return [self.index(t) for t in tokens]

    def to_json(self) -> list[str]:
        """A JSON-ready list that `from_json` turns back into an equal vocabulary."""
        return list(self._tokens)

    @classmethod
    def from_json(cls, tokens: Sequence[str]) -> Vocabulary:
        """Rebuild a vocabulary saved by `to_json`; raises `InvalidRequest` if it is malformed."""
        if tuple(tokens[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise InvalidRequest(
                "a saved vocabulary must start with the special tokens "
                f"{list(SPECIAL_TOKENS)}; this one starts with {list(tokens[:4])}"
            )
        return cls(tokens[len(SPECIAL_TOKENS) :])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and other._tokens == self._tokens

    def __hash__(self) -> int:
        return hash(self._tokens)

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} tokens)"

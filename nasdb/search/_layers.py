"""The layer grammar: one frozen dataclass per layer type, and their canonical JSON form.

A layer validates its own hyperparameters when it is built (a bad value raises
`InvalidArchitecture`); whether it fits its input is shape inference's job (`_shapes`).
The JSON keys and their order are the ones pinned in docs/contracts.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Literal

from nasdb.schema.errors import InvalidArchitecture

ACTIVATIONS: tuple[str, ...] = ("relu", "tanh", "sigmoid", "elu", "gelu")
PADDINGS: tuple[str, ...] = ("valid", "same")

Padding = Literal["valid", "same"]


def _positive_int(layer: str, name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArchitecture(f"{layer} {name} must be a positive integer, got {value!r}")


def _format_number(value: float) -> str:
    """The shortest text that reads back as the same float (0.25, 0.125, 1e-05)."""
    return repr(value)


@dataclass(frozen=True)
class _Layer:
    """Base of every layer; `TYPE` is the stable name used in JSON and in `layer_types`."""

    TYPE: ClassVar[str] = ""
    #: Fields a variation may reparameterize (each has a grid in the search space).
    TUNABLE: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        """The canonical JSON object: ``type`` first, then the fields in declaration order."""
        data: dict[str, Any] = {"type": self.TYPE}
        for f in fields(self):
            data[f.name] = getattr(self, f.name)
        return data

    @property
    def label(self) -> str:
        """A short name used in error messages, e.g. ``Conv2D k5`` or ``Dense 128``."""
        return self.TYPE

    def code(self) -> str:
        """The layer's glyph code, e.g. ``C32k3`` (see `Architecture.glyph`)."""
        raise NotImplementedError

    def __str__(self) -> str:
        """Readable and parseable: ``Conv2D(filters=32, kernel=3, stride=1, padding=valid)``."""
        values = [
            f"{f.name}={_format_number(v) if isinstance(v, float) else v}"
            for f in fields(self)
            for v in [getattr(self, f.name)]
        ]
        return f"{self.TYPE}({', '.join(values)})" if values else self.TYPE


@dataclass(frozen=True)
class Conv2D(_Layer):
    """A 2-D convolution with bias. ``same`` padding pads (kernel - 1) / 2 on every side."""

    filters: int
    kernel: int
    stride: int = 1
    padding: Padding = "valid"

    TYPE: ClassVar[str] = "Conv2D"
    TUNABLE: ClassVar[tuple[str, ...]] = ("filters", "kernel", "stride", "padding")

    def __post_init__(self) -> None:
        _positive_int("Conv2D", "filters", self.filters)
        _positive_int("Conv2D", "kernel", self.kernel)
        _positive_int("Conv2D", "stride", self.stride)
        if self.padding not in PADDINGS:
            raise InvalidArchitecture(
                f"Conv2D padding must be 'valid' or 'same', got {self.padding!r}"
            )
        if self.padding == "same" and self.kernel % 2 == 0:
            raise InvalidArchitecture(
                f"Conv2D padding 'same' needs an odd kernel, got kernel {self.kernel}; "
                "use an odd kernel or padding 'valid'"
            )

    @property
    def label(self) -> str:
        return f"Conv2D k{self.kernel}"

    def code(self) -> str:
        stride = f"s{self.stride}" if self.stride != 1 else ""
        same = "p" if self.padding == "same" else ""
        return f"C{self.filters}k{self.kernel}{stride}{same}"


@dataclass(frozen=True)
class _Pool(_Layer):
    size: int
    stride: int = 2

    TUNABLE: ClassVar[tuple[str, ...]] = ("size", "stride")
    _CODE: ClassVar[str] = ""

    def __post_init__(self) -> None:
        _positive_int(self.TYPE, "size", self.size)
        _positive_int(self.TYPE, "stride", self.stride)

    @property
    def label(self) -> str:
        return f"{self.TYPE} {self.size}"

    def code(self) -> str:
        stride = f"s{self.stride}" if self.stride != self.size else ""
        return f"{self._CODE}{self.size}{stride}"


@dataclass(frozen=True)
class MaxPool2D(_Pool):
    """Max pooling over size x size windows, no padding."""

    TYPE: ClassVar[str] = "MaxPool2D"
    _CODE: ClassVar[str] = "P"


@dataclass(frozen=True)
class AvgPool2D(_Pool):
    """Average pooling over size x size windows, no padding."""

    TYPE: ClassVar[str] = "AvgPool2D"
    _CODE: ClassVar[str] = "A"


@dataclass(frozen=True)
class Dropout(_Layer):
    """Element-wise dropout (as REMAP's Keras ``Dropout``), on feature maps and vectors alike."""

    rate: float

    TYPE: ClassVar[str] = "Dropout"
    TUNABLE: ClassVar[tuple[str, ...]] = ("rate",)

    def __post_init__(self) -> None:
        rate = self.rate
        if (
            isinstance(rate, bool)
            or not isinstance(rate, int | float)
            or not math.isfinite(rate)
            or not 0.0 <= rate < 1.0
        ):
            raise InvalidArchitecture(f"Dropout rate must be a number in [0, 1), got {rate!r}")
        object.__setattr__(self, "rate", float(rate))

    @property
    def label(self) -> str:
        return f"Dropout {_format_number(self.rate)}"

    def code(self) -> str:
        return f"Dr{_format_number(self.rate)}"


@dataclass(frozen=True)
class BatchNorm(_Layer):
    """Batch normalisation: per channel on feature maps, per feature on vectors."""

    TYPE: ClassVar[str] = "BatchNorm"

    def code(self) -> str:
        return "BN"


@dataclass(frozen=True)
class Activation(_Layer):
    """An element-wise non-linearity."""

    fn: str

    TYPE: ClassVar[str] = "Activation"
    TUNABLE: ClassVar[tuple[str, ...]] = ("fn",)

    def __post_init__(self) -> None:
        if self.fn not in ACTIVATIONS:
            raise InvalidArchitecture(
                f"Activation fn must be one of {', '.join(ACTIVATIONS)}, got {self.fn!r}"
            )

    @property
    def label(self) -> str:
        return f"Activation {self.fn}"

    def code(self) -> str:
        return self.fn


@dataclass(frozen=True)
class Dense(_Layer):
    """A fully connected layer with bias; on a feature map it flattens first."""

    units: int

    TYPE: ClassVar[str] = "Dense"
    TUNABLE: ClassVar[tuple[str, ...]] = ("units",)

    def __post_init__(self) -> None:
        _positive_int("Dense", "units", self.units)

    @property
    def label(self) -> str:
        return f"Dense {self.units}"

    def code(self) -> str:
        return f"D{self.units}"


@dataclass(frozen=True)
class Flatten(_Layer):
    """Flattens a feature map to a vector (a no-op on a vector)."""

    TYPE: ClassVar[str] = "Flatten"

    def code(self) -> str:
        return "F"


@dataclass(frozen=True)
class GlobalAvgPool(_Layer):
    """Averages each channel of a feature map to one number."""

    TYPE: ClassVar[str] = "GlobalAvgPool"

    def code(self) -> str:
        return "GAP"


def _odd_kernel(layer: str, kernel: int) -> None:
    _positive_int(layer, "kernel", kernel)
    if kernel % 2 == 0:
        raise InvalidArchitecture(
            f"{layer} uses same padding, which needs an odd kernel; got kernel {kernel}"
        )


@dataclass(frozen=True)
class _Block(_Layer):
    """Base of the composite blocks: same padding, BatchNorm, an activation; ``stride`` > 1
    downsamples (output side ceil(side / stride))."""

    filters: int
    kernel: int = 3
    stride: int = 1
    fn: str = "relu"

    TUNABLE: ClassVar[tuple[str, ...]] = ("filters", "kernel", "stride", "fn")
    _CODE: ClassVar[str] = ""

    def __post_init__(self) -> None:
        _positive_int(self.TYPE, "filters", self.filters)
        _odd_kernel(self.TYPE, self.kernel)
        _positive_int(self.TYPE, "stride", self.stride)
        if self.fn not in ACTIVATIONS:
            raise InvalidArchitecture(
                f"{self.TYPE} fn must be one of {', '.join(ACTIVATIONS)}, got {self.fn!r}"
            )

    @property
    def label(self) -> str:
        return f"{self.TYPE} {self.filters}k{self.kernel}"

    def code(self) -> str:
        stride = f"s{self.stride}" if self.stride != 1 else ""
        fn = "" if self.fn == "relu" else f"/{self.fn}"
        return f"{self._CODE}{self.filters}k{self.kernel}{stride}{fn}"


@dataclass(frozen=True)
class ConvBlock(_Block):
    """Conv2D without bias (same padding) -> BatchNorm -> activation."""

    TYPE: ClassVar[str] = "ConvBlock"
    _CODE: ClassVar[str] = "CB"


@dataclass(frozen=True)
class SepConv(_Block):
    """Depthwise-separable convolution (MobileNet): a depthwise ``kernel`` x ``kernel`` conv
    (groups = input channels, ``stride``) -> BatchNorm -> activation, then a pointwise 1x1 conv to
    ``filters`` -> BatchNorm -> activation. Convolutions have no bias."""

    TYPE: ClassVar[str] = "SepConv"
    _CODE: ClassVar[str] = "SC"


@dataclass(frozen=True)
class Residual(_Block):
    """A ResNet basic block: conv(``stride``)-BN-act-conv-BN plus a shortcut, then the
    activation. The shortcut is the identity when the shape is kept, else a 1x1 conv
    (``stride``, no bias) -> BatchNorm."""

    TYPE: ClassVar[str] = "Residual"
    _CODE: ClassVar[str] = "R"


Layer = (
    Conv2D | MaxPool2D | AvgPool2D | Dropout | BatchNorm | Activation | Dense | Flatten
    | GlobalAvgPool | ConvBlock | SepConv | Residual
)

#: The composite blocks of the modern space (each is one layer in the architecture JSON).
BLOCK_TYPES: tuple[str, ...] = ("ConvBlock", "SepConv", "Residual")

LAYER_TYPES: dict[str, type[_Layer]] = {
    cls.TYPE: cls
    for cls in (Conv2D, MaxPool2D, AvgPool2D, Dropout, BatchNorm, Activation, Dense, Flatten,
                GlobalAvgPool, ConvBlock, SepConv, Residual)
}


def layer_from_dict(data: object, index: int) -> Layer:
    """Build one layer from its JSON object; errors name the layer's index.

    Raises `InvalidArchitecture` for a non-object, an unknown type, an unknown or missing key, or
    a bad value.
    """
    if not isinstance(data, dict):
        raise InvalidArchitecture(f"layer {index}: expected a JSON object, got {data!r}")
    kind = data.get("type")
    cls = LAYER_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise InvalidArchitecture(
            f"layer {index}: unknown layer type {kind!r}; known types: "
            f"{', '.join(sorted(LAYER_TYPES))}"
        )
    names = [f.name for f in fields(cls)]
    unknown = sorted(set(data) - {"type", *names})
    if unknown:
        takes = ", ".join(names) if names else "no parameters"
        raise InvalidArchitecture(
            f"layer {index} ({kind}): unknown key {unknown[0]!r}; {kind} takes {takes}"
        )
    kwargs = {k: v for k, v in data.items() if k != "type"}
    try:
        return cls(**kwargs)  # type: ignore[return-value]
    except InvalidArchitecture as e:
        raise InvalidArchitecture(f"layer {index} ({kind}): {e}") from e
    except TypeError as e:  # a required field is missing
        missing = [f.name for f in fields(cls) if f.name not in kwargs]
        raise InvalidArchitecture(
            f"layer {index} ({kind}): missing key {missing[0]!r}" if missing else
            f"layer {index} ({kind}): {e}"
        ) from e

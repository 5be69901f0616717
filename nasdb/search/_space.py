"""The search space: REMAP's layer-transition tables and hyperparameter grids, and our extension.

The default `SearchSpace()` is REMAP's space exactly (DESIGN.md, appendix): the next layer is drawn
uniformly from a list per previous layer type, repeats acting as weights, and a second table applies
once a Dense layer has been sampled. ``"Softmax"`` in a list ends the body (the head follows).

The extension (`SearchSpace.extended()`) adds same padding, BatchNorm, GlobalAvgPool, Flatten, ELU
and GELU, and max pooling wherever REMAP allows average pooling; each addition has its own switch.

The modern space (`SearchSpace.modern()`, ``blocks`` non-empty) is a chain of its own
(`MODERN_TABLE`): a ConvBlock stem, then ConvBlock / SepConv / Residual blocks with downsampling
by a stride-2 block or a max pool, a GlobalAvgPool head and an optional Dense + Dropout. Its
states also see the feature map (`SearchSpace.fits`): downsampling stops once the side is below
`MIN_DOWNSAMPLE_SIDE`, GlobalAvgPool waits until the side is at most `GAP_SIDE` and
`MIN_LAYERS_BEFORE_GAP` layers came first, and a block's
width is drawn between its input width and twice that (the stem from the three smallest widths),
so widths and depths follow the input size. ``max_mflops`` bounds a sample's FLOPs per image.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, fields
from typing import Any

from nasdb.schema.errors import InvalidArchitecture, InvalidRequest

from ._layers import (
    ACTIVATIONS,
    BLOCK_TYPES,
    PADDINGS,
    Activation,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    ConvBlock,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool,
    Layer,
    MaxPool2D,
    Residual,
    SepConv,
)

#: Ends the body: the classifier head (Dense to the class count) follows.
SOFTMAX = "Softmax"
#: The "previous layer" at the start of an architecture.
START = "(start)"

_Row = tuple[str, ...]


def _times(kind: str, n: int) -> _Row:
    return (kind,) * n


# REMAP's first table, verbatim from DESIGN.md's appendix.
REMAP_TABLE: dict[str, _Row] = {
    START: (*_times("Conv2D", 6), "Dense", "AvgPool2D", "MaxPool2D", "Dropout", "Activation",
            SOFTMAX),
    "Conv2D": (*_times("Activation", 3), "Conv2D", "Dropout", "AvgPool2D", "Dense", SOFTMAX),
    "Dense": (*_times("Activation", 3), "Dropout", "AvgPool2D", "Dense", SOFTMAX),
    "AvgPool2D": (*_times("Conv2D", 2), "Dense", "Dropout", "AvgPool2D", "Activation", SOFTMAX),
    "MaxPool2D": (*_times("Conv2D", 2), "Dense", "Dropout", "AvgPool2D", "Activation", SOFTMAX),
    "Dropout": ("AvgPool2D", *_times("Conv2D", 2), "Dense", SOFTMAX),
    "Activation": ("AvgPool2D", *_times("Conv2D", 3), "Dense", "Dropout", SOFTMAX),
}

# REMAP's second table, used once a Dense layer has been sampled. The Dense row is the first
# table's (that row is only ever reached after a Dense); its AvgPool2D never fits a vector, so it
# is resampled like any layer that does not fit.
REMAP_TABLE_AFTER_DENSE: dict[str, _Row] = {
    "Dense": REMAP_TABLE["Dense"],
    "Dropout": ("Dense", SOFTMAX),
    "Activation": ("Dense", "Dropout", SOFTMAX),
    "AvgPool2D": ("Dense", "Dropout", "Activation", SOFTMAX),
    "MaxPool2D": ("Dense", "Dropout", "Activation", SOFTMAX),
}

_REMAP_DROPOUT_RATES = tuple(i / 8 for i in range(1, 8))

_BLOCKS: _Row = ("ConvBlock", "ConvBlock", "SepConv", "Residual", "Residual")
#: The modern chain: blocks, downsampling, a GlobalAvgPool head (repeats are weights).
MODERN_TABLE: dict[str, _Row] = {
    START: ("ConvBlock",),
    "ConvBlock": (*_BLOCKS, "MaxPool2D", *_times("GlobalAvgPool", 2)),
    "SepConv": (*_BLOCKS, "MaxPool2D", *_times("GlobalAvgPool", 2)),
    "Residual": (*_BLOCKS, "MaxPool2D", *_times("GlobalAvgPool", 2)),
    "MaxPool2D": _BLOCKS,
    "AvgPool2D": _BLOCKS,
    "GlobalAvgPool": (*_times(SOFTMAX, 3), "Dropout", "Dense"),
    "Dense": ("Activation",),
    "Activation": (SOFTMAX, "Dropout"),
    "Dropout": (SOFTMAX,),
}
#: Modern space: no downsampling of a feature map whose side is below this.
MIN_DOWNSAMPLE_SIDE = 6
#: Modern space: GlobalAvgPool only once the feature map's side is at most this ...
GAP_SIDE = 8
#: ... and at least this many layers (the stem included) came before it.
MIN_LAYERS_BEFORE_GAP = 3


@dataclass(frozen=True)
class SearchSpace:
    """Grids and switches of the model space; `SearchSpace()` is REMAP's space.

    ``max_layers`` bounds the body (the chain is ended with the head when it is reached);
    ``max_params`` is the sampler's size cap (a sampled architecture over it is redrawn whole).
    Raises `InvalidRequest` for empty grids or values a layer would refuse.
    """

    filters: tuple[int, ...] = (16, 32, 64, 128)
    kernels: tuple[int, ...] = (1, 3, 5)
    conv_strides: tuple[int, ...] = (1,)
    paddings: tuple[str, ...] = ("valid",)
    pool_sizes: tuple[int, ...] = (2, 3, 5)
    pool_strides: tuple[int, ...] = (2,)
    units: tuple[int, ...] = (16, 64, 128, 256)
    dropout_rates: tuple[float, ...] = _REMAP_DROPOUT_RATES
    activations: tuple[str, ...] = ("tanh", "relu", "sigmoid")
    allow_batchnorm: bool = False
    allow_global_pool: bool = False
    allow_flatten: bool = False
    allow_maxpool_anywhere: bool = False
    max_layers: int = 20
    max_params: int = 1_000_000
    blocks: tuple[str, ...] = ()
    block_kernels: tuple[int, ...] = (3, 3, 5)
    block_strides: tuple[int, ...] = (1, 1, 2)
    max_mflops: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                object.__setattr__(self, f.name, tuple(value))
                value = tuple(value)
            if isinstance(value, tuple) and not value and f.name != "blocks":
                raise InvalidRequest(f"search space {f.name} must not be empty")
        for name in ("max_layers", "max_params"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidRequest(
                    f"search space {name} must be a positive integer, got {value!r}"
                )
        if isinstance(self.max_mflops, bool) or not isinstance(self.max_mflops, int | float) \
                or self.max_mflops < 0:
            raise InvalidRequest(
                f"search space max_mflops must be a number >= 0 (0: no bound), got "
                f"{self.max_mflops!r}"
            )
        bad = [b for b in self.blocks if b not in BLOCK_TYPES]
        bad += [p for p in self.paddings if p not in PADDINGS]
        bad += [a for a in self.activations if a not in ACTIVATIONS]
        if bad:
            raise InvalidRequest(f"search space has unknown value {bad[0]!r}")
        try:  # every grid value must make a valid layer
            for kind in ("Conv2D", "MaxPool2D", "Dense", "Dropout", "Activation", *self.blocks):
                for name in self.tunable(kind):
                    for value in self.grid(kind, name):
                        _build(kind, {name: value})
        except InvalidArchitecture as e:
            raise InvalidRequest(f"search space has a bad grid value: {e}") from e

    @classmethod
    def remap(cls) -> SearchSpace:
        """REMAP's published space (the default)."""
        return cls()

    @classmethod
    def extended(cls, **overrides: Any) -> SearchSpace:
        """REMAP's space plus same padding, BatchNorm, GlobalAvgPool, Flatten, ELU/GELU and max
        pooling wherever average pooling is allowed."""
        settings: dict[str, Any] = {
            "paddings": ("valid", "same"),
            "activations": ACTIVATIONS,
            "allow_batchnorm": True,
            "allow_global_pool": True,
            "allow_flatten": True,
            "allow_maxpool_anywhere": True,
        }
        settings.update(overrides)
        return cls(**settings)

    @classmethod
    def modern(cls, **overrides: Any) -> SearchSpace:
        """The modern space (module docstring): BatchNorm conv blocks, depthwise-separable and
        residual blocks, stride or pooling downsampling, GlobalAvgPool heads, at most 100k
        parameters and 12 MFLOPs per image unless overridden."""
        settings: dict[str, Any] = {
            "filters": (16, 24, 32, 48, 64, 96, 128),
            "units": (64, 128),
            "dropout_rates": (0.1, 0.2, 0.3),
            "activations": ("relu", "relu", "gelu"),
            "pool_sizes": (2, 3),
            "pool_strides": (2,),
            "paddings": ("same",),
            "blocks": BLOCK_TYPES,
            "max_layers": 10,
            "max_params": 100_000,
            "max_mflops": 12.0,
        }
        settings.update(overrides)
        return cls(**settings)

    @property
    def is_modern(self) -> bool:
        """True for a space with composite blocks (it samples from `MODERN_TABLE`)."""
        return bool(self.blocks)

    def fits(self, layer: Layer, in_shape: tuple[int, ...], out_shape: tuple[int, ...],
             index: int = 0) -> bool:
        """Whether the chain may place ``layer`` at body position ``index`` (always, in REMAP's
        space; module docstring for the modern space's rules)."""
        if not self.is_modern or len(in_shape) != 3:
            return True
        side = min(in_shape[1:])
        if layer.TYPE == "GlobalAvgPool":
            return side <= GAP_SIDE and index >= MIN_LAYERS_BEFORE_GAP
        if len(out_shape) == 3 and min(out_shape[1:]) < side:
            return side >= MIN_DOWNSAMPLE_SIDE
        return True

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready object (as stored in StudyCreated.space)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchSpace:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InvalidRequest(
                f"unknown search space setting {unknown[0]!r}; known: {', '.join(sorted(names))}"
            )
        values: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in data.items()
        }
        return cls(**values)

    # --- transitions --------------------------------------------------------------------------

    def transitions(self, previous: str | None, after_dense: bool) -> tuple[str, ...]:
        """The list the next layer type is drawn from (uniformly; repeats are weights).

        ``previous`` is the previous layer's type (None at the start); ``after_dense`` says
        whether a Dense layer has been sampled already (REMAP's second table).
        """
        key = START if previous is None else previous
        if self.is_modern:
            modern = MODERN_TABLE.get(key, _BLOCKS)
            return tuple(k for k in modern if k not in BLOCK_TYPES or k in self.blocks) \
                or (SOFTMAX,)
        table = REMAP_TABLE_AFTER_DENSE if after_dense else REMAP_TABLE
        row = list(table.get(key, ()))
        if not row and key in ("BatchNorm", "GlobalAvgPool", "Flatten"):
            row = self._extension_row(key, after_dense)
        elif not row:
            # A layer type outside the table (a hand-written model): continue like after Dense.
            row = list(table.get("Dense", REMAP_TABLE["Dense"]))
        if self.allow_maxpool_anywhere and key != START:
            row += ["MaxPool2D"] * row.count("AvgPool2D")
        if self.allow_batchnorm and key in ("Conv2D", "Dense"):
            row += ["BatchNorm"] * (2 if key == "Conv2D" else 1)
        if self.allow_global_pool and key in ("Conv2D", "Activation", "AvgPool2D", "MaxPool2D",
                                              "BatchNorm") and not after_dense:
            row.append("GlobalAvgPool")
        if self.allow_flatten and key in ("Conv2D", "Activation", "AvgPool2D", "MaxPool2D",
                                          "Dropout") and not after_dense:
            row.append("Flatten")
        return tuple(row)

    def _extension_row(self, key: str, after_dense: bool) -> list[str]:
        if key == "BatchNorm":
            if after_dense:
                return [*_times("Activation", 3), "Dropout", "Dense", SOFTMAX]
            return [*_times("Activation", 3), "Conv2D", "Dropout", "AvgPool2D", "Dense", SOFTMAX]
        # GlobalAvgPool and Flatten leave a vector: only vector layers follow.
        row = [*_times("Dense", 2), "Dropout", SOFTMAX]
        if self.allow_batchnorm:
            row.append("BatchNorm")
        return row

    def layer_kinds(self) -> tuple[str, ...]:
        """Every layer type this space can sample."""
        if self.is_modern:
            return (*self.blocks, "MaxPool2D", "GlobalAvgPool", "Dense", "Activation", "Dropout")
        kinds = ["Conv2D", "MaxPool2D", "AvgPool2D", "Dropout", "Activation", "Dense"]
        if self.allow_batchnorm:
            kinds.append("BatchNorm")
        if self.allow_global_pool:
            kinds.append("GlobalAvgPool")
        if self.allow_flatten:
            kinds.append("Flatten")
        return tuple(kinds)

    # --- grids --------------------------------------------------------------------------------

    def tunable(self, kind: str) -> tuple[str, ...]:
        """The hyperparameters of a layer type that have a grid (what reparameterize may pick)."""
        return {
            "Conv2D": ("filters", "kernel", "stride", "padding"),
            "MaxPool2D": ("size", "stride"),
            "AvgPool2D": ("size", "stride"),
            "Dense": ("units",),
            "Dropout": ("rate",),
            "Activation": ("fn",),
            **{block: ("filters", "kernel", "stride", "fn") for block in BLOCK_TYPES},
        }.get(kind, ())

    def grid(self, kind: str, name: str) -> tuple[Any, ...]:
        """The values a layer hyperparameter is drawn from."""
        grids: dict[tuple[str, str], tuple[Any, ...]] = {
            ("Conv2D", "filters"): self.filters,
            ("Conv2D", "kernel"): self.kernels,
            ("Conv2D", "stride"): self.conv_strides,
            ("Conv2D", "padding"): self.paddings,
            ("Dense", "units"): self.units,
            ("Dropout", "rate"): self.dropout_rates,
            ("Activation", "fn"): self.activations,
        }
        if kind in ("MaxPool2D", "AvgPool2D"):
            return {"size": self.pool_sizes, "stride": self.pool_strides}[name]
        if kind in BLOCK_TYPES:
            return {"filters": self.filters, "kernel": self.block_kernels,
                    "stride": self.block_strides, "fn": self.activations}[name]
        return grids[(kind, name)]

    def draw(self, kind: str, rng: random.Random,
             in_shape: tuple[int, ...] | None = None) -> Layer:
        """A layer of type ``kind`` with each hyperparameter drawn uniformly from its grid; in
        the modern space a block's width follows ``in_shape`` (module docstring)."""
        params = {name: rng.choice(self.widths(kind, in_shape) if name == "filters"
                                   else self.grid(kind, name))
                  for name in self.tunable(kind)}
        return _build(kind, params)

    def widths(self, kind: str, in_shape: tuple[int, ...] | None) -> tuple[Any, ...]:
        """The filters a new ``kind`` layer may take on ``in_shape`` (the whole grid in REMAP's
        space; between the input width and twice it for a modern block, the three smallest for
        the stem on an image of at most 4 channels)."""
        grid = self.grid(kind, "filters")
        if not self.is_modern or kind not in BLOCK_TYPES or in_shape is None \
                or len(in_shape) != 3:
            return grid
        c = in_shape[0]
        if c <= 4:
            return tuple(sorted(set(grid)))[:3]
        near = tuple(f for f in grid if c <= f <= 2 * c)
        return near or grid


_DEFAULTS: dict[str, dict[str, Any]] = {
    "ConvBlock": {"filters": 16},
    "SepConv": {"filters": 16},
    "Residual": {"filters": 16},
    "Conv2D": {"filters": 16, "kernel": 1},
    "MaxPool2D": {"size": 2},
    "AvgPool2D": {"size": 2},
    "Dense": {"units": 16},
    "Dropout": {"rate": 0.5},
    "Activation": {"fn": "relu"},
}


def _build(kind: str, params: dict[str, Any]) -> Layer:
    classes: dict[str, Any] = {
        "Conv2D": Conv2D, "MaxPool2D": MaxPool2D, "AvgPool2D": AvgPool2D, "Dense": Dense,
        "Dropout": Dropout, "Activation": Activation, "BatchNorm": BatchNorm,
        "GlobalAvgPool": GlobalAvgPool, "Flatten": Flatten, "ConvBlock": ConvBlock,
        "SepConv": SepConv, "Residual": Residual,
    }
    layer: Layer = classes[kind](**{**_DEFAULTS.get(kind, {}), **params})
    return layer

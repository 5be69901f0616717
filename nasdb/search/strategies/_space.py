"""A study's search space: the architecture grammar, the hyperparameter ranges and what was dropped.

Stored in StudyCreated.space as ``{"architecture": {...SearchSpace...}, "hyperparameters":
{...HyperparameterSpace...}, "dropped": [...], "max_blocks": 3}``. Random strategies sample from
REMAP's Markov chain; the Optuna strategies (TPE, NSGA-II, BOHB) search a fixed-length encoding of
the same grammar (`optuna_distributions` / `build_from_params`): up to ``max_blocks`` conv blocks
(filters, kernel, pooling), one activation, an optional Dense layer and dropout, plus the
hyperparameters (lr log-scaled). A dropped hyperparameter is fixed at its base value; a dropped
layer type never appears.

In the modern space (`StudySpace.modern()`, the default of new studies) the encoding is a ConvBlock
stem and up to ``max_blocks`` stages, each a block type (ConvBlock, SepConv, Residual), width,
kernel, downsampling (stride, pool or none) and repeat count, its width the previous width times
1, 1.5 or 2 (rounded up to the width grid), then GlobalAvgPool, an optional
Dense and dropout. Either way a sample over the space's parameter cap or cost bound is refused.
`StudySpace.remap()` is REMAP's space, unchanged.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from nasdb.schema.errors import InvalidArchitecture, InvalidRequest

from .._architecture import Architecture
from .._dataset import DatasetInfo
from .._hyperparameters import Hyperparameters, HyperparameterSpace, allowed_augment
from .._layers import (
    Activation,
    AvgPool2D,
    Conv2D,
    ConvBlock,
    Dense,
    Dropout,
    GlobalAvgPool,
    Layer,
    MaxPool2D,
    Residual,
    SepConv,
)
from .._sampler import sample_architecture, within_bounds
from .._shapes import count_params, infer_shapes
from .._space import MIN_DOWNSAMPLE_SIDE, SearchSpace

#: A small training split gets a smaller batch so that an epoch has at least this many steps.
MIN_STEPS_PER_EPOCH = 20

#: The named spaces of ``nasdb study create --space NAME``.
SPACE_NAMES = ("modern", "remap", "extended")

HYPERPARAMETER_NAMES = ("optimizer", "lr", "weight_decay", "batch_size", "epochs", "schedule")
LAYER_NAMES = {
    "conv2d": "Conv2D", "maxpool2d": "MaxPool2D", "maxpool": "MaxPool2D", "avgpool2d": "AvgPool2D",
    "avgpool": "AvgPool2D", "dropout": "Dropout", "batchnorm": "BatchNorm",
    "activation": "Activation", "dense": "Dense", "flatten": "Flatten",
    "globalavgpool": "GlobalAvgPool",
}
#: ``--set`` keys -> (part, field, kind): kind "range" is LOW..HIGH, "list" is A,B,C, "int"/"bool".
SETTABLE: dict[str, tuple[str, str, str]] = {
    "lr": ("hyperparameters", "lr_range", "range"),
    "optimizer": ("hyperparameters", "optimizers", "list"),
    "batch_size": ("hyperparameters", "batch_sizes", "list"),
    "weight_decay": ("hyperparameters", "weight_decays", "list"),
    "epochs": ("hyperparameters", "epochs", "list"),
    "schedule": ("hyperparameters", "schedules", "list"),
    "filters": ("architecture", "filters", "list"),
    "kernel": ("architecture", "kernels", "list"),
    "units": ("architecture", "units", "list"),
    "dropout": ("architecture", "dropout_rates", "list"),
    "activation": ("architecture", "activations", "list"),
    "padding": ("architecture", "paddings", "list"),
    "pool_size": ("architecture", "pool_sizes", "list"),
    "max_layers": ("architecture", "max_layers", "int"),
    "max_params": ("architecture", "max_params", "int"),
    "max_blocks": ("", "max_blocks", "int"),
}


def _scalar(text: str) -> Any:
    text = text.strip()
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def _section(data: dict[str, Any], key: str) -> dict[str, Any]:
    """One section of a space as a dict; `InvalidRequest` when it is not a JSON object."""
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise InvalidRequest(f"search space {key!r} must be a JSON object of settings, got "
                             f"{json.dumps(value)[:40]}")
    return dict(value)


@dataclass(frozen=True)
class StudySpace:
    """See the module docstring. Raises `InvalidRequest` for bad values."""

    architecture: SearchSpace = field(default_factory=SearchSpace)
    hyperparameters: HyperparameterSpace = field(default_factory=HyperparameterSpace)
    dropped: tuple[str, ...] = ()
    max_blocks: int = 3

    def __post_init__(self) -> None:
        for name in self.dropped:
            if name not in HYPERPARAMETER_NAMES and name not in LAYER_NAMES.values():
                raise InvalidRequest(
                    f"cannot drop {name!r}: drop a hyperparameter "
                    f"({', '.join(HYPERPARAMETER_NAMES)}) or a layer type "
                    f"({', '.join(sorted(set(LAYER_NAMES)))})"
                )
        if isinstance(self.max_blocks, bool) or not isinstance(self.max_blocks, int) \
                or not 1 <= self.max_blocks <= 8:
            raise InvalidRequest(f"max_blocks must be an integer in 1..8, got {self.max_blocks!r}")

    @classmethod
    def modern(cls) -> StudySpace:
        """The default of new studies: the modern architecture space and training recipe."""
        return cls(SearchSpace.modern(), HyperparameterSpace.modern())

    @classmethod
    def remap(cls) -> StudySpace:
        """REMAP's space and hyperparameter grids, exactly as the paper's seeds ran them."""
        return cls()

    @classmethod
    def named(cls, name: str) -> StudySpace:
        """`SPACE_NAMES`: modern, remap or extended (REMAP's plus our extended grammar)."""
        if name == "modern":
            return cls.modern()
        if name == "remap":
            return cls.remap()
        if name == "extended":
            return cls(SearchSpace.extended())
        raise InvalidRequest(f"unknown space {name!r}; choose one of {', '.join(SPACE_NAMES)}, "
                             "or give the space as a JSON object")

    # --- JSON -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {"architecture": self.architecture.to_dict(),
                "hyperparameters": self.hyperparameters.to_dict(),
                "dropped": list(self.dropped), "max_blocks": self.max_blocks}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudySpace:
        unknown = sorted(set(data) - {"architecture", "hyperparameters", "dropped", "max_blocks"})
        if unknown:
            raise InvalidRequest(
                f"unknown search space key {unknown[0]!r}; it takes architecture, "
                "hyperparameters, dropped and max_blocks"
            )
        dropped = data.get("dropped") or []
        max_blocks = data.get("max_blocks", 3)
        if not isinstance(dropped, list) or not all(isinstance(n, str) for n in dropped):
            raise InvalidRequest("search space 'dropped' must be a list of names")
        if isinstance(max_blocks, bool) or not isinstance(max_blocks, int) or max_blocks < 1:
            raise InvalidRequest(f"search space 'max_blocks' must be a positive integer, got "
                                 f"{max_blocks!r}")
        return cls(
            SearchSpace.from_dict(_section(data, "architecture")),
            HyperparameterSpace.from_dict(_section(data, "hyperparameters")),
            tuple(_drop_name(n) for n in dropped),
            max_blocks,
        )

    # --- refinement -------------------------------------------------------------------------

    def refined(self, assignments: dict[str, str], drop: tuple[str, ...] = ()
                ) -> tuple[StudySpace, list[str]]:
        """A copy with ``--set KEY=VALUE`` assignments and ``--drop NAME`` applied, and the list
        of changes in words. Raises `InvalidRequest` for unknown keys or bad values."""
        data = self.to_dict()
        changes: list[str] = []
        for key, text in assignments.items():
            if key not in SETTABLE:
                raise InvalidRequest(
                    f"cannot set {key!r}; settable: {', '.join(sorted(SETTABLE))}"
                )
            part, name, kind = SETTABLE[key]
            value: Any
            if kind == "range":
                low, sep, high = text.partition("..")
                if not sep:
                    raise InvalidRequest(f"{key} takes LOW..HIGH (e.g. 1e-4..1e-2), got {text!r}")
                value = [float(_scalar(low)), float(_scalar(high))]
            elif kind == "list":
                value = [_scalar(v) for v in text.split(",") if v.strip()]
            else:
                value = _scalar(text)
            target = data if not part else data[part]
            before = target.get(name)
            target[name] = value
            changes.append(f"{key}: {_words(before)} -> {_words(value)}")
        for raw in drop:
            name = _drop_name(raw)
            if name in data["dropped"]:
                continue
            data["dropped"].append(name)
            changes.append(f"dropped {raw}")
        try:
            return StudySpace.from_dict(data), changes
        except (TypeError, ValueError) as e:
            raise InvalidRequest(f"refined search space is invalid: {e}") from e

    # --- sampling ---------------------------------------------------------------------------

    def base(self) -> Hyperparameters:
        return self.hyperparameters.base

    def capped(self, max_params: int) -> StudySpace:
        """This space with architectures of at most ``max_params`` parameters (never above its
        own cap)."""
        a = self.architecture
        return replace(self, architecture=replace(a, max_params=min(a.max_params, max_params)))

    def sample_hyperparameters(self, rng: random.Random) -> Hyperparameters:
        hp = self.hyperparameters.sample(rng)
        fixed = {n: getattr(self.base(), n) for n in self.dropped if n in HYPERPARAMETER_NAMES}
        return replace(hp, **fixed) if fixed else hp

    @staticmethod
    def for_dataset(hp: Hyperparameters, dataset: DatasetInfo) -> Hyperparameters:
        """``hp`` with the augmentation the dataset allows (no flip where it changes a class)
        and a batch small enough for `MIN_STEPS_PER_EPOCH` steps per epoch on a small
        training split (at least 16 images)."""
        augment = allowed_augment(hp.augment, dataset.hflip)
        batch = hp.batch_size
        if dataset.train_size:
            batch = min(batch, max(16, dataset.train_size // MIN_STEPS_PER_EPOCH))
        if augment == hp.augment and batch == hp.batch_size:
            return hp
        return replace(hp, augment=augment, batch_size=batch)

    def _dropped_layers(self) -> set[str]:
        return {n for n in self.dropped if n not in HYPERPARAMETER_NAMES}

    def sample(self, dataset: DatasetInfo, rng: random.Random) -> tuple[Architecture,
                                                                         Hyperparameters]:
        """A Markov-chain architecture (dropped layer types stripped) and hyperparameters."""
        dropped = self._dropped_layers()
        for _ in range(200):
            arch = sample_architecture(dataset.input_shape, dataset.num_classes,
                                       space=self.architecture, rng=rng)
            if dropped:
                arch = Architecture(tuple(x for x in arch.layers if x.TYPE not in dropped))
                try:
                    infer_shapes(arch, dataset.input_shape, dataset.num_classes)
                except InvalidArchitecture:
                    continue
            return arch, self.for_dataset(self.sample_hyperparameters(rng), dataset)
        raise InvalidRequest("could not sample a valid architecture without the dropped layers")

    # --- the Optuna encoding -----------------------------------------------------------------

    def optuna_distributions(self) -> dict[str, Any]:
        """Name -> optuna distribution of the fixed-length encoding (see the module docstring)."""
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        a, h, dropped = self.architecture, self.hyperparameters, set(self.dropped)
        out: dict[str, Any] = {}
        if a.is_modern:
            out.update(self._modern_distributions())
        elif "Conv2D" not in dropped:
            out["blocks"] = IntDistribution(0, self.max_blocks)
            pools = ["none"] + [p for p in ("max", "avg")
                                if ("MaxPool2D" if p == "max" else "AvgPool2D") not in dropped]
            for i in range(self.max_blocks):
                out[f"filters_{i}"] = CategoricalDistribution(list(a.filters))
                out[f"kernel_{i}"] = CategoricalDistribution(list(a.kernels))
                out[f"pool_{i}"] = CategoricalDistribution(pools)
        if "Activation" not in dropped:
            out["activation"] = CategoricalDistribution(sorted(set(a.activations)))
        if "Dense" not in dropped:
            out["units"] = CategoricalDistribution([0, *a.units])
        if "Dropout" not in dropped:
            out["dropout"] = CategoricalDistribution([0.0, *a.dropout_rates])
        if "lr" not in dropped:
            low, high = h.lr_range
            if low < high:
                out["lr"] = FloatDistribution(low, high, log=True)
        for name, values in (("optimizer", h.optimizers), ("batch_size", h.batch_sizes),
                             ("weight_decay", h.weight_decays)):
            if name not in dropped and len(values) > 1:
                out[name] = CategoricalDistribution(list(values))
        return out

    def _blocks(self) -> list[str]:
        return [b for b in dict.fromkeys(self.architecture.blocks) if b not in self.dropped]

    def _modern_distributions(self) -> dict[str, Any]:
        from optuna.distributions import CategoricalDistribution, IntDistribution

        a = self.architecture
        widths = sorted(set(a.filters))
        out: dict[str, Any] = {
            "stem_filters": CategoricalDistribution(widths[:3]),
            "stages": IntDistribution(1, self.max_blocks),
        }
        downs = ["stride", "none"] + ([] if "MaxPool2D" in self.dropped else ["pool"])
        for i in range(self.max_blocks):
            out[f"block_{i}"] = CategoricalDistribution(self._blocks() or ["ConvBlock"])
            out[f"widen_{i}"] = CategoricalDistribution([1.0, 1.5, 2.0])
            out[f"kernel_{i}"] = CategoricalDistribution(sorted(set(a.block_kernels)))
            out[f"down_{i}"] = CategoricalDistribution(downs)
            out[f"repeat_{i}"] = IntDistribution(1, 2)
        return out

    def _modern_layers(self, params: dict[str, Any], dataset: DatasetInfo) -> list[Layer]:
        classes: dict[str, type[ConvBlock | SepConv | Residual]] = {
            "ConvBlock": ConvBlock, "SepConv": SepConv, "Residual": Residual}
        fn = str(params.get("activation", self.architecture.activations[0]))
        side = min(dataset.input_shape[1:])
        widths = sorted(set(self.architecture.filters))
        width = int(params["stem_filters"])
        layers: list[Layer] = [ConvBlock(width, 3, fn=fn)]
        for i in range(int(params.get("stages", 1))):
            wanted = width * float(params[f"widen_{i}"])
            width = next((w for w in widths if w >= wanted), widths[-1])
            down = str(params[f"down_{i}"]) if side >= MIN_DOWNSAMPLE_SIDE else "none"
            if down == "pool":
                layers.append(MaxPool2D(2, 2))
            block = classes[str(params[f"block_{i}"])]
            for r in range(int(params[f"repeat_{i}"])):
                stride = 2 if down == "stride" and r == 0 else 1
                layers.append(block(width, int(params[f"kernel_{i}"]), stride, fn))
            if down != "none":
                side = (side - 2) // 2 + 1 if down == "pool" else (side - 1) // 2 + 1
        layers.append(GlobalAvgPool())
        if int(params.get("units", 0)) > 0:
            layers += [Dense(int(params["units"])), Activation(fn)]
        if float(params.get("dropout", 0.0)) > 0:
            layers.append(Dropout(float(params["dropout"])))
        return layers

    def build_from_params(self, params: dict[str, Any], dataset: DatasetInfo
                          ) -> tuple[Architecture, Hyperparameters]:
        """The model an Optuna trial's params describe; always valid for the dataset.

        Raises `InvalidArchitecture` when it is over the space's parameter cap or cost bound.
        """
        if self.architecture.is_modern:
            arch = Architecture(tuple(self._modern_layers(params, dataset)))
            if not within_bounds(arch, self.architecture, dataset.input_shape,
                                 dataset.num_classes):
                raise InvalidArchitecture(
                    f"{arch.glyph(dataset.num_classes)} is over the space's max_params "
                    f"{self.architecture.max_params} or max_mflops "
                    f"{self.architecture.max_mflops:g}"
                )
            return arch, self.for_dataset(self._hyperparameters(params), dataset)
        _, height, width = dataset.input_shape
        side = min(height, width)
        layers: list[Layer] = []
        fn = params.get("activation", self.architecture.activations[0])
        padding: Literal["valid", "same"] = (
            "same" if "same" in self.architecture.paddings else "valid"
        )
        for i in range(int(params.get("blocks", 0))):
            kernel = int(params[f"kernel_{i}"])
            if padding == "valid" and side < kernel:
                continue
            layers.append(Conv2D(int(params[f"filters_{i}"]), kernel, padding=padding))
            side = side if padding == "same" else side - kernel + 1
            if "Activation" not in self.dropped:
                layers.append(Activation(fn))
            pool = params.get(f"pool_{i}", "none")
            if pool != "none" and side >= 2:
                layers.append(MaxPool2D(2, 2) if pool == "max" else AvgPool2D(2, 2))
                side = (side - 2) // 2 + 1
        if int(params.get("units", 0)) > 0:
            layers.append(Dense(int(params["units"])))
            if "Activation" not in self.dropped:
                layers.append(Activation(fn))
        if float(params.get("dropout", 0.0)) > 0:
            layers.append(Dropout(float(params["dropout"])))
        arch = Architecture(tuple(layers))
        params_count = count_params(arch, dataset.input_shape, dataset.num_classes)
        if params_count > self.architecture.max_params:
            raise InvalidArchitecture(
                f"{params_count} parameters, over the space's max_params "
                f"{self.architecture.max_params}"
            )
        return arch, self.for_dataset(self._hyperparameters(params), dataset)

    def _hyperparameters(self, params: dict[str, Any]) -> Hyperparameters:
        base = self.base()
        h = self.hyperparameters
        return replace(
            base,
            lr=float(params["lr"]) if "lr" in params else (
                base.lr if "lr" in self.dropped else float(h.lr_range[0])),
            optimizer=str(params.get("optimizer", base.optimizer if "optimizer" in self.dropped
                                     else h.optimizers[0])),
            batch_size=int(params.get("batch_size", base.batch_size if "batch_size" in
                                      self.dropped else h.batch_sizes[0])),
            weight_decay=float(params.get("weight_decay", base.weight_decay if "weight_decay" in
                                          self.dropped else h.weight_decays[0])),
            epochs=int(h.epochs[0]) if "epochs" not in self.dropped else base.epochs,
        )


def _drop_name(raw: str) -> str:
    key = raw.strip()
    if key in HYPERPARAMETER_NAMES:
        return key
    return LAYER_NAMES.get(key.lower(), key)


def _words(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)

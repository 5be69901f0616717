"""Training hyperparameters (the job payload) and the space they are sampled from.

`Hyperparameters` is the one class for them: the search samples it, proposals record it as JSON
(docs/contracts.md, "Hyperparameters JSON"), and the training loop reads it; it validates once.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from nasdb.schema.errors import InvalidRequest
from nasdb.schema.vocabulary import AUGMENTATIONS, OPTIMIZERS, SCHEDULES

#: ``augment="auto"`` trains with random crops and flips only when the run takes at least
#: ``augment_from_steps`` optimizer steps, and without augmentation when it is shorter: in a
#: short run augmentation costs more accuracy than it buys. This is the field's default, the
#: threshold of payloads recorded before the field existed (so they reproduce as they trained).
#: Measured on 15,000 Fashion-MNIST images, 4 epochs (472 steps) of
#: `CB16k3s2/gelu-CB32k3s2/gelu-CB32k5s2-CB32k5/gelu-GAP-D10` reached 0.8755 test accuracy
#: without augmentation and 0.8243 with crops and flips (README, "The default search").
AUTO_AUGMENT_STEPS = 2000
#: The modern recipe's ``augment_from_steps``: on full Fashion-MNIST the 56k model of
#: `benchmarks/recipe.py --long` lost accuracy to crops and flips even at 27 epochs (11,394
#: steps; README, "Why `auto`"), so the default search's rungs train unaugmented and only a
#: longer run augments.
MODERN_AUGMENT_FROM_STEPS = 20_000


def allowed_augment(augment: str, hflip: bool) -> str:
    """``augment`` without the horizontal flip when the dataset does not allow one (digits)."""
    if hflip or "flip" not in augment:
        return augment
    return "crop" if augment == "crop-flip" else "none"


def effective_augment(augment: str, hflip: bool, steps: int, from_steps: int) -> str:
    """What a run of ``steps`` optimizer steps trains with: ``auto`` is crops and flips from
    ``from_steps`` steps (`Hyperparameters.augment_from_steps`) and none below, then only the
    flips the dataset allows (`allowed_augment`)."""
    if augment == "auto":
        augment = "crop-flip" if steps >= from_steps else "none"
    return allowed_augment(augment, hflip)


_INT64_MAX = 2**63 - 1


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


@dataclass(frozen=True)
class Hyperparameters:
    """How a model is trained; defaults are REMAP's (Adam 1e-3, StepLR gamma 0.75, 10 epochs,
    batch 256, early stop when validation loss improves by < 0.005 for 3 epochs).

    ``early_stop_patience`` 0 turns early stopping off. The training recipe: ``augment``
    (`AUGMENTATIONS`; a flip only where the dataset allows it, see `DatasetInfo.hflip`),
    ``label_smoothing`` in [0, 1), and ``wd_norm_bias`` (False: no weight decay on BatchNorm
    weights and biases); ``augment_from_steps`` is where ``augment="auto"`` starts augmenting
    (`effective_augment`). Invalid values raise `InvalidRequest`.
    """

    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 256
    epochs: int = 10
    schedule: str = "step"
    step_gamma: float = 0.75
    seed: int = 0
    early_stop_patience: int = 3
    early_stop_delta: float = 0.005
    augment: str = "none"
    label_smoothing: float = 0.0
    wd_norm_bias: bool = True
    augment_from_steps: int = AUTO_AUGMENT_STEPS

    def __post_init__(self) -> None:
        problems: list[str] = []
        if self.augment not in AUGMENTATIONS:
            problems.append(
                f"augment must be one of {', '.join(AUGMENTATIONS)}, got {self.augment!r}"
            )
        if not _is_number(self.label_smoothing) or not 0 <= self.label_smoothing < 1:
            problems.append(f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}")
        if not isinstance(self.wd_norm_bias, bool):
            problems.append(f"wd_norm_bias must be true or false, got {self.wd_norm_bias!r}")
        if self.optimizer not in OPTIMIZERS:
            problems.append(
                f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}"
            )
        if self.schedule not in SCHEDULES:
            problems.append(
                f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}"
            )
        if not _is_number(self.lr) or self.lr <= 0:
            problems.append(f"lr must be a positive number, got {self.lr!r}")
        if not _is_number(self.weight_decay) or self.weight_decay < 0:
            problems.append(f"weight_decay must be a number >= 0, got {self.weight_decay!r}")
        if not _is_number(self.step_gamma) or not 0 < self.step_gamma <= 1:
            problems.append(f"step_gamma must be in (0, 1], got {self.step_gamma!r}")
        if not _is_number(self.early_stop_delta) or self.early_stop_delta < 0:
            problems.append(
                f"early_stop_delta must be a number >= 0, got {self.early_stop_delta!r}"
            )
        minimums = (("batch_size", 1), ("epochs", 1), ("seed", 0), ("early_stop_patience", 0),
                    ("augment_from_steps", 0))
        for name, low in minimums:
            value = getattr(self, name)
            if not _is_int(value) or value < low:
                problems.append(f"{name} must be an integer >= {low}, got {value!r}")
            elif value > _INT64_MAX:  # the log's JSON (and the trainer) holds 64-bit integers
                problems.append(f"{name} must be at most {_INT64_MAX}, got {value!r}")
        if problems:
            raise InvalidRequest("invalid hyperparameters: " + "; ".join(problems))
        for name in ("lr", "weight_decay", "step_gamma", "early_stop_delta", "label_smoothing"):
            object.__setattr__(self, name, float(getattr(self, name)))

    @classmethod
    def of(cls, hp: Hyperparameters | Mapping[str, Any] | None) -> Hyperparameters:
        """``hp`` itself, the defaults for None, or a contract JSON object parsed by `from_json`."""
        if isinstance(hp, Hyperparameters):
            return hp
        return cls() if hp is None else cls.from_json(dict(hp))

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of docs/contracts.md, keys in contract order."""
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, data: str | bytes | dict[str, Any]) -> Hyperparameters:
        """Parse the contract JSON; missing keys take their defaults, unknown keys are refused."""
        if isinstance(data, str | bytes):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as e:
                raise InvalidRequest(f"hyperparameters are not valid JSON: {e}") from e
        if not isinstance(data, dict):
            raise InvalidRequest(f"hyperparameters must be a JSON object, got {data!r}")
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise InvalidRequest(
                f"unknown hyperparameter {unknown[0]!r}; known: {', '.join(names)}"
            )
        return cls(**data)


@dataclass(frozen=True)
class HyperparameterSpace:
    """Where sampled hyperparameters come from: lr log-uniform in ``lr_range`` (rounded to three
    significant digits), the others uniformly from their tuples. Fields not in the space are
    copied from ``base``.
    """

    optimizers: tuple[str, ...] = ("adam", "adamw", "sgd", "rmsprop")  # REMAP's
    lr_range: tuple[float, float] = (1e-4, 1e-2)
    batch_sizes: tuple[int, ...] = (64, 128, 256)
    weight_decays: tuple[float, ...] = (0.0, 1e-4)
    epochs: tuple[int, ...] = (10,)
    schedules: tuple[str, ...] = ("step",)
    base: Hyperparameters = Hyperparameters()

    def __post_init__(self) -> None:
        low, high = self.lr_range
        if not (_is_number(low) and _is_number(high) and 0 < low <= high):
            raise InvalidRequest(
                f"lr_range must be (low, high) with 0 < low <= high, got {self.lr_range!r}"
            )
        for name in ("optimizers", "batch_sizes", "weight_decays", "epochs", "schedules"):
            if not getattr(self, name):
                raise InvalidRequest(f"hyperparameter space {name} must not be empty")
        # Validate every grid value once, through the dataclass's own checks.
        for opt in self.optimizers:
            replace(self.base, optimizer=opt)
        for b in self.batch_sizes:
            replace(self.base, batch_size=b)
        for wd in self.weight_decays:
            replace(self.base, weight_decay=wd)
        for e in self.epochs:
            replace(self.base, epochs=e)
        for s in self.schedules:
            replace(self.base, schedule=s)

    @classmethod
    def modern(cls) -> HyperparameterSpace:
        """The modern recipe (issue 12): SGD with Nesterov momentum under OneCycle, label
        smoothing 0.1, random crops and flips in runs long enough to profit from them
        (``auto`` from `MODERN_AUGMENT_FROM_STEPS`; flips only where the dataset allows them), no
        weight decay on BatchNorm and biases, batch 128, no early stopping (multi-fidelity
        search stops hopeless runs instead)."""
        base = Hyperparameters(
            optimizer="sgd-nesterov", lr=0.1, weight_decay=5e-4, batch_size=128, epochs=9,
            schedule="onecycle", early_stop_patience=0, augment="auto",
            label_smoothing=0.1, wd_norm_bias=False, augment_from_steps=MODERN_AUGMENT_FROM_STEPS,
        )
        return cls(optimizers=("sgd-nesterov",), lr_range=(0.05, 0.3), batch_sizes=(128,),
                   weight_decays=(5e-4, 1e-3), epochs=(9,), schedules=("onecycle",), base=base)

    def sample(self, rng: random.Random) -> Hyperparameters:
        """One draw; the same ``rng`` state gives the same hyperparameters."""
        low, high = self.lr_range
        lr = math.exp(rng.uniform(math.log(low), math.log(high)))
        return replace(
            self.base,
            optimizer=rng.choice(self.optimizers),
            lr=float(f"{lr:.3g}"),
            batch_size=rng.choice(self.batch_sizes),
            weight_decay=rng.choice(self.weight_decays),
            epochs=rng.choice(self.epochs),
            schedule=rng.choice(self.schedules),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready object (tuples as lists, ``base`` as the hyperparameters JSON)."""
        data = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
        data["base"] = self.base.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HyperparameterSpace:
        """The inverse of `to_dict`; unknown keys raise `InvalidRequest`."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InvalidRequest(
                f"unknown hyperparameter space setting {unknown[0]!r}; known: "
                f"{', '.join(sorted(names))}"
            )
        values: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k != "base"
        }
        if "base" in data:
            values["base"] = Hyperparameters.from_json(data["base"])
        return cls(**values)

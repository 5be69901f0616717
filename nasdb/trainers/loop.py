"""The training loop: one pass of tensors through a module, fast, deterministic, honest about time.

`train(module, data, hp)` trains a `torch.nn.Module` in place on a `LoadedDataset` and returns a
`TrainResult`. Design (after airbench / nanoGPT):

- The splits are moved to the device once; a batch is an index into those tensors chosen by
  `torch.randperm` with a seeded `torch.Generator` — no DataLoader, no per-sample Python.
- Given the same module initialisation, data and `seed`, training on the CPU is deterministic: the
  same losses, the same weights. Global RNG state is forked, so calling `train` does not change the
  caller's random streams.
- `EpochResult.seconds` and `TrainResult.train_seconds` count training steps only (no evaluation),
  with the device synchronised before the clock is read.
- Evaluation runs under `torch.inference_mode()` in large batches with the module in eval mode.
- Stopping happens only at epoch boundaries: early stopping (REMAP: validation loss improved by
  less than `early_stop_delta` for `early_stop_patience` epochs), `on_epoch` returning True, or
  `should_stop()` returning True (cancel). The test split is evaluated in every case, on the
  weights of the last epoch trained.
- A NaN/inf loss raises `TrainingError` naming the epoch and learning rate; running out of memory
  (CUDA or CPU) is translated to `TrainingError` with what to try next.

Per-class metrics follow AutoCl's one-vs-rest definitions from the confusion matrix (rows: true
class, columns: predicted): accuracy = (TP+TN)/N, precision = TP/(TP+FP), recall (sensitivity) =
TP/(TP+FN), specificity = TN/(TN+FP); an undefined ratio (zero denominator) is reported as 0.0.
The per-epoch `class_acc` uses the same one-vs-rest accuracy on the validation split.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nasdb.schema.errors import InvalidRequest, TrainingError
from nasdb.trainers.acceleration import Acceleration, autocast, compiled_module, place_splits
from nasdb.trainers.datasets import LoadedDataset
from nasdb.trainers.devices import select_device

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "ClassMetrics",
    "EpochResult",
    "Evaluation",
    "TrainConfig",
    "TrainResult",
    "class_metrics",
    "confusion_matrix",
    "evaluate",
    "select_device",
    "train",
]

OPTIMIZERS: tuple[str, ...] = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES: tuple[str, ...] = ("none", "step", "cosine")
EVAL_BATCH_SIZE = 2048
"""Images per forward pass when evaluating (no gradients are kept, so this can be large)."""
SGD_MOMENTUM = 0.9
"""Momentum used with `optimizer="sgd"` (plain SGD without momentum is rarely what anyone wants)."""


# ==================================================================================================
# public types
# ==================================================================================================


@dataclass(frozen=True)
class TrainConfig:
    """The training hyperparameters (docs/contracts.md, "Hyperparameters JSON"), validated.

    Defaults are REMAP's: Adam lr 1e-3, StepLR(step 1, gamma 0.75), 10 epochs, batch 256, early stop
    when the validation loss improves by < 0.005 for 3 epochs. `early_stop_patience` 0 disables
    early stopping. Raises `InvalidRequest` on construction when a value is out of range (as
    `nasdb.search.Hyperparameters` does).
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

    def __post_init__(self) -> None:
        problems = []
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer {self.optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            problems.append(f"schedule {self.schedule!r} is not one of {', '.join(SCHEDULES)}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            problems.append(f"lr must be a positive number, got {self.lr}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            problems.append(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.batch_size < 1:
            problems.append(f"batch_size must be >= 1, got {self.batch_size}")
        if self.epochs < 0:
            problems.append(f"epochs must be >= 0, got {self.epochs}")
        if not (0 < self.step_gamma <= 1):
            problems.append(f"step_gamma must be in (0, 1], got {self.step_gamma}")
        if self.early_stop_patience < 0:
            problems.append(f"early_stop_patience must be >= 0, got {self.early_stop_patience}")
        if problems:
            raise InvalidRequest("invalid hyperparameters: " + "; ".join(problems))

    @classmethod
    def from_any(cls, hp: TrainConfig | Mapping[str, Any] | Any | None) -> TrainConfig:
        """Build from a dict, a dataclass, a pydantic model or any object with these attributes.

        Missing fields take the defaults; fields this loop does not know are ignored, so a richer
        Hyperparameters type can be passed as it is. Values are coerced to the field types.
        """
        if isinstance(hp, TrainConfig):
            return hp
        if hp is None:
            return cls()
        if isinstance(hp, Mapping):
            values = dict(hp)
        elif hasattr(hp, "model_dump"):
            values = dict(hp.model_dump())
        elif dataclasses.is_dataclass(hp) and not isinstance(hp, type):
            values = dataclasses.asdict(hp)
        else:
            values = {f.name: getattr(hp, f.name) for f in dataclasses.fields(cls) if hasattr(hp, f.name)}
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in values or values[f.name] is None:
                continue
            value = values[f.name]
            try:
                if f.type == "str":
                    kwargs[f.name] = str(getattr(value, "value", value)).lower()
                elif f.type == "int":
                    kwargs[f.name] = int(value)
                else:
                    kwargs[f.name] = float(value)
            except (TypeError, ValueError) as e:
                raise InvalidRequest(f"invalid hyperparameters: {f.name} = {value!r} ({e})") from e
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """The contract's Hyperparameters JSON."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class EpochResult:
    """One finished epoch (the EpochCompleted payload). `epoch` counts from 1.

    `train_loss`/`train_acc` are means over the epoch's training batches (in train mode);
    `val_*` and `class_acc` ({class name: one-vs-rest accuracy}) come from the validation split;
    `lr` is the learning rate used during the epoch; `seconds` is training time only.
    """

    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    class_acc: dict[str, float]
    lr: float
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ClassMetrics:
    """One class's one-vs-rest metrics on the test split (module docstring for definitions)."""

    class_index: int
    class_name: str
    accuracy: float
    precision: float
    recall: float
    specificity: float
    support: int


@dataclass(frozen=True)
class Evaluation:
    """A module's loss, accuracy and predictions on one split; `predictions` in split order."""

    loss: float
    accuracy: float
    predictions: np.ndarray
    confusion: np.ndarray

    @property
    def support(self) -> int:
        """Number of images evaluated."""
        return int(self.predictions.shape[0])


StopReason = Literal["completed", "early_stop", "cancelled"]


@dataclass(frozen=True, eq=False)
class TrainResult:
    """The outcome of `train` (the TrainingCompleted payload plus the weights).

    `predictions` is one uint8 per test image in test-split order (`predictions_digest` is its
    sha256 hex); `latency_ms` is the per-image time of a batched forward over the test split (best
    of a few, synchronised); `state_dict` holds CPU copies of the final weights; `history` lists
    every `EpochResult`; `stop_reason` says why training ended.
    """

    test_loss: float
    test_acc: float
    class_metrics: list[ClassMetrics]
    confusion_matrix: list[list[int]]
    predictions: bytes
    predictions_digest: str
    latency_ms: float
    epochs_trained: int
    train_seconds: float
    stop_reason: StopReason
    history: list[EpochResult]
    config: TrainConfig
    device: str
    state_dict: dict[str, torch.Tensor] = field(repr=False)
    acceleration: Acceleration = field(default_factory=Acceleration)

    @property
    def best_val_acc(self) -> float | None:
        """Best validation accuracy over the epochs trained (None when no epoch ran)."""
        return max((e.val_acc for e in self.history), default=None)

    def to_dict(self) -> dict[str, Any]:
        """The TrainingCompleted fields as plain JSON types (no weights, no prediction bytes)."""
        return {
            "test_loss": self.test_loss,
            "test_acc": self.test_acc,
            "class_metrics": [dataclasses.asdict(m) for m in self.class_metrics],
            "confusion_matrix": self.confusion_matrix,
            "predictions_digest": self.predictions_digest,
            "latency_ms": self.latency_ms,
            "epochs_trained": self.epochs_trained,
            "train_seconds": self.train_seconds,
            "stop_reason": self.stop_reason,
        }


# ==================================================================================================
# device
# ==================================================================================================


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ==================================================================================================
# evaluation
# ==================================================================================================


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts[i, j] of images of true class i predicted as class j (int64, num_classes square)."""
    flat = np.asarray(y_true, dtype=np.int64) * num_classes + np.asarray(y_pred, dtype=np.int64)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def class_metrics(confusion: np.ndarray, class_names: list[str] | tuple[str, ...]) -> list[ClassMetrics]:
    """AutoCl's one-vs-rest metrics per class from a confusion matrix (module docstring)."""
    cm = np.asarray(confusion, dtype=np.float64)
    n = cm.sum()
    tp = np.diag(cm)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    tn = n - tp - fp - fn

    def ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.divide(a, b, out=np.zeros_like(a), where=b > 0)

    accuracy = ratio(tp + tn, np.full_like(tp, n))
    precision = ratio(tp, tp + fp)
    recall = ratio(tp, tp + fn)
    specificity = ratio(tn, tn + fp)
    return [
        ClassMetrics(
            class_index=i,
            class_name=str(class_names[i]),
            accuracy=float(accuracy[i]),
            precision=float(precision[i]),
            recall=float(recall[i]),
            specificity=float(specificity[i]),
            support=int(tp[i] + fn[i]),
        )
        for i in range(cm.shape[0])
    ]


def evaluate(
    module: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    num_classes: int | None = None,
    batch_size: int = EVAL_BATCH_SIZE,
) -> Evaluation:
    """Mean cross-entropy, accuracy, predictions and confusion matrix of `module` on (x, y).

    `x` and `y` must already be on the module's device. The module is put in eval mode for the
    pass and its previous mode restored; no gradients are recorded (`torch.inference_mode`).
    """
    if num_classes is None:
        num_classes = int(y.max().item()) + 1 if y.numel() else 1
    was_training = module.training
    module.eval()
    n = int(y.shape[0])
    loss_sum = torch.zeros((), dtype=torch.float64, device=y.device)
    preds = torch.empty(n, dtype=torch.int64, device=y.device)
    try:
        with torch.inference_mode():
            for start in range(0, n, batch_size):
                logits = module(x[start : start + batch_size])
                yb = y[start : start + batch_size]
                loss_sum += F.cross_entropy(logits.float(), yb, reduction="sum").double()
                preds[start : start + batch_size] = logits.argmax(dim=1)
    finally:
        module.train(was_training)
    pred_np = preds.cpu().numpy()
    true_np = y.cpu().numpy()
    cm = confusion_matrix(true_np, pred_np, num_classes)
    return Evaluation(
        loss=float(loss_sum.item()) / max(n, 1),
        accuracy=float((pred_np == true_np).mean()) if n else 0.0,
        predictions=pred_np,
        confusion=cm,
    )


def _latency_ms(
    module: nn.Module,
    x: torch.Tensor,
    device: torch.device,
    *,
    repeats: int = 3,
    budget: float = 2.0,
) -> float:
    """Per-image milliseconds of a batched forward over `x`: best of up to `repeats` timed passes
    (fewer when a pass exceeds `budget` seconds); the module is warm from the evaluation pass."""
    n = int(x.shape[0])
    if n == 0:
        return 0.0
    module.eval()
    best = math.inf
    spent = 0.0
    with torch.inference_mode():
        for _ in range(repeats):
            _sync(device)
            t0 = time.perf_counter()
            for start in range(0, n, EVAL_BATCH_SIZE):
                module(x[start : start + EVAL_BATCH_SIZE])
            _sync(device)
            dt = time.perf_counter() - t0
            best = min(best, dt)
            spent += dt
            if spent > budget:
                break
    return best * 1000.0 / n


# ==================================================================================================
# optimizer and schedule
# ==================================================================================================


def _make_optimizer(module: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        raise TrainingError("the module has no trainable parameters")
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=SGD_MOMENTUM, weight_decay=cfg.weight_decay)
    return torch.optim.RMSprop(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _make_schedule(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """Stepped once per epoch: step = StepLR(1, gamma), cosine = CosineAnnealingLR(epochs)."""
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=cfg.step_gamma)
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(cfg.epochs, 1))
    return None


# ==================================================================================================
# the loop
# ==================================================================================================


def _is_oom(e: BaseException) -> bool:
    if isinstance(e, torch.OutOfMemoryError | MemoryError):
        return True
    text = str(e).lower()
    return isinstance(e, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text or "not enough memory" in text
    )


@contextmanager
def _translate_oom(device: torch.device, cfg: TrainConfig, where: Callable[[], str]) -> Iterator[None]:
    try:
        yield
    except Exception as e:
        if not _is_oom(e):
            raise
        if device.type == "cuda":
            torch.cuda.empty_cache()
        raise TrainingError(
            f"out of memory on {device} {where()} with batch_size {cfg.batch_size}: "
            "try a smaller batch_size or a smaller model"
        ) from e


def _diverged(epoch: int, what: str, value: float, cfg: TrainConfig) -> TrainingError:
    kind = "nan" if math.isnan(value) else "inf"
    return TrainingError(
        f"training diverged at epoch {epoch}: {what} is {kind} (lr {cfg.lr:g} may be too high)"
    )


def train(
    module: nn.Module,
    data: LoadedDataset,
    hp: TrainConfig | Mapping[str, Any] | Any | None = None,
    device: str | torch.device | None = "cpu",
    on_epoch: Callable[[EpochResult], bool | None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    *,
    acceleration: Acceleration | None = None,
    compile_key: str | None = None,
) -> TrainResult:
    """Train `module` in place on `data` with hyperparameters `hp`; return the `TrainResult`.

    `module` must map a float32 NCHW batch of `data.input_shape` to `data.num_classes` logits; it
    is moved to `device` (see `select_device`). `hp` is anything `TrainConfig.from_any` accepts.
    After each epoch `on_epoch(result)` is called; training stops at that boundary when it returns
    True, when `should_stop()` returns True (checked before every epoch and after `on_epoch`), or on
    early stopping. The test split is evaluated at the end in every case.

    ``acceleration`` (default: `Acceleration.resolve` for the device and this job's step count)
    chooses bf16 autocast, channels_last and compile; ``compile_key`` names the architecture for
    the per-process compile cache (see `nasdb.trainers.acceleration`).

    Raises `InvalidRequest` for invalid hyperparameters; `TrainingError` for a NaN/inf loss,
    running out of memory, or more than 256 classes (predictions are stored as uint8); exceptions
    raised by the callbacks propagate unchanged. Not thread-safe for the same module.
    """
    cfg = TrainConfig.from_any(hp)
    dev = select_device(device)
    if data.num_classes > 256:
        raise TrainingError(f"{data.num_classes} classes: predictions are stored as uint8 (<= 256)")
    phase = "before training"

    def where() -> str:
        return phase

    with (
        torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []),
        _translate_oom(dev, cfg, where),
    ):
        torch.manual_seed(cfg.seed)

        # ---------------------------------------------------------------------------------- data
        n_train = int(data.y_train.shape[0])
        acc = acceleration or Acceleration.resolve(
            dev, steps=cfg.epochs * math.ceil(n_train / cfg.batch_size),
            image_input=data.x_train.dim() == 4)
        x_train, y_train, x_val, y_val, x_test, y_test = place_splits(
            dev, acc, data.x_train, data.y_train, data.x_val, data.y_val, data.x_test, data.y_test)
        generator = torch.Generator(device=dev)
        generator.manual_seed(cfg.seed)

        # --------------------------------------------------------------------------------- model
        trained, forward = compiled_module(module, dev, acc, compile_key)
        trained.train()

        # ----------------------------------------------------------------------------- optimizer
        optimizer = _make_optimizer(trained, cfg)
        schedule = _make_schedule(optimizer, cfg)

        # ---------------------------------------------------------------------------------- loop
        history: list[EpochResult] = []
        stop_reason: StopReason = "completed"
        best_val_loss = math.inf
        epochs_without_improvement = 0
        train_seconds = 0.0
        for epoch in range(cfg.epochs):
            phase = f"at epoch {epoch + 1}"
            if should_stop is not None and should_stop():
                stop_reason = "cancelled"
                break
            lr = float(optimizer.param_groups[0]["lr"])
            trained.train()
            loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
            correct = torch.zeros((), dtype=torch.int64, device=dev)
            _sync(dev)
            t0 = time.perf_counter()
            order = torch.randperm(n_train, generator=generator, device=dev)
            for start in range(0, n_train, cfg.batch_size):
                idx = order[start : start + cfg.batch_size]
                xb, yb = x_train[idx], y_train[idx]
                with autocast(dev, acc):
                    logits = forward(xb)
                loss = F.cross_entropy(logits.float(), yb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                with torch.no_grad():
                    loss_sum += loss.detach().double() * yb.shape[0]
                    correct += (logits.argmax(dim=1) == yb).sum()
            _sync(dev)
            seconds = time.perf_counter() - t0
            train_seconds += seconds
            train_loss = float(loss_sum.item()) / max(n_train, 1)
            if not math.isfinite(train_loss):
                raise _diverged(epoch + 1, "loss", train_loss, cfg)
            if schedule is not None:
                schedule.step()

            # ------------------------------------------------------------------- evaluation (val)
            with autocast(dev, acc):
                val = evaluate(trained, x_val, y_val, num_classes=data.num_classes)
            if not math.isfinite(val.loss) and val.support:
                raise _diverged(epoch + 1, "validation loss", val.loss, cfg)
            per_class = class_metrics(val.confusion, data.class_names)
            result = EpochResult(
                epoch=epoch + 1,
                train_loss=train_loss,
                train_acc=int(correct.item()) / max(n_train, 1),
                val_loss=val.loss,
                val_acc=val.accuracy,
                class_acc={m.class_name: m.accuracy for m in per_class},
                lr=lr,
                seconds=seconds,
            )
            history.append(result)
            if on_epoch is not None and on_epoch(result) is True:
                stop_reason = "cancelled"
                break
            if should_stop is not None and should_stop():
                stop_reason = "cancelled"
                break
            if val.loss < best_val_loss - cfg.early_stop_delta:
                best_val_loss = val.loss
                epochs_without_improvement = 0
            else:
                epochs_without_improvement += 1
            if 0 < cfg.early_stop_patience <= epochs_without_improvement:
                stop_reason = "early_stop"
                break
        phase = "while evaluating the test split"

        # ------------------------------------------------------------------ evaluation (test)
        with autocast(dev, acc):
            test = evaluate(trained, x_test, y_test, num_classes=data.num_classes)
            latency = _latency_ms(trained, x_test, dev)
        trained.train()
        predictions = test.predictions.astype(np.uint8).tobytes()
        state = {k: v.detach().to("cpu", copy=True) for k, v in trained.state_dict().items()}
        if trained is not module:  # a cached compiled module trained in its place
            module.load_state_dict(state)

    return TrainResult(
        test_loss=test.loss,
        test_acc=test.accuracy,
        class_metrics=class_metrics(test.confusion, data.class_names),
        confusion_matrix=test.confusion.tolist(),
        predictions=predictions,
        predictions_digest=hashlib.sha256(predictions).hexdigest(),
        latency_ms=latency,
        epochs_trained=len(history),
        train_seconds=train_seconds,
        stop_reason=stop_reason,
        history=history,
        config=cfg,
        device=str(dev),
        state_dict=state,
        acceleration=acc,
    )

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

Per-class metrics come from the confusion matrix by `nasdb.schema.metrics.per_class_metrics`, the
one definition: a class's accuracy is its recall (the share of its images classified correctly);
AutoCl's one-vs-rest accuracy is kept as `one_vs_rest_accuracy`. The per-epoch `class_acc` is the
same per-class accuracy on the validation split (`class_ovr_acc` its one-vs-rest accuracy).
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

from nasdb.schema.errors import TrainingError
from nasdb.schema.metrics import ClassMetrics, per_class_metrics
from nasdb.search import Hyperparameters
from nasdb.search._hyperparameters import effective_augment
from nasdb.trainers.acceleration import Acceleration, autocast, compiled_module, place_splits
from nasdb.trainers.datasets import LoadedDataset
from nasdb.trainers.devices import select_device

__all__ = [
    "ClassMetrics",
    "EpochResult",
    "Evaluation",
    "TrainResult",
    "augment_batch",
    "class_metrics",
    "confusion_matrix",
    "evaluate",
    "select_device",
    "train",
]

EVAL_BATCH_SIZE = 2048
"""Images per forward pass when evaluating (no gradients are kept, so this can be large)."""
SGD_MOMENTUM = 0.9
"""Momentum used with `optimizer="sgd"` (plain SGD without momentum is rarely what anyone wants)."""


# ==================================================================================================
# public types
# ==================================================================================================


@dataclass(frozen=True)
class EpochResult:
    """One finished epoch (the EpochCompleted payload). `epoch` counts from 1.

    `train_loss`/`train_acc` are means over the epoch's training batches (in train mode);
    `val_*`, `class_acc` ({class name: the class's accuracy, i.e. its recall}) and
    `class_ovr_acc` ({class name: one-vs-rest accuracy}) come from the validation split;
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
    class_ovr_acc: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        return dataclasses.asdict(self)


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
    config: Hyperparameters
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
    """Each class's metrics from a confusion matrix (`nasdb.schema.metrics.per_class_metrics`)."""
    return per_class_metrics(np.asarray(confusion).tolist(), class_names)


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


def _param_groups(module: nn.Module, cfg: Hyperparameters) -> list[dict[str, Any]]:
    """One group with weight decay; with ``wd_norm_bias`` False, BatchNorm weights and biases
    (every parameter of fewer than 2 dimensions) go to a second group without it."""
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        raise TrainingError("the module has no trainable parameters")
    if cfg.wd_norm_bias or cfg.weight_decay == 0:
        return [{"params": params, "weight_decay": cfg.weight_decay}]
    decay = [p for p in params if p.ndim >= 2]
    rest = [p for p in params if p.ndim < 2]
    return [g for g in ({"params": decay, "weight_decay": cfg.weight_decay},
                        {"params": rest, "weight_decay": 0.0}) if g["params"]]


def _make_optimizer(module: nn.Module, cfg: Hyperparameters) -> torch.optim.Optimizer:
    groups = _param_groups(module, cfg)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    if cfg.optimizer in ("sgd", "sgd-nesterov"):
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=SGD_MOMENTUM,
                               nesterov=cfg.optimizer == "sgd-nesterov")
    return torch.optim.RMSprop(groups, lr=cfg.lr)


ONECYCLE_WARMUP = 0.25
"""Share of the steps OneCycle spends rising to ``lr`` (from lr/25; it ends at lr/25e4)."""
WARMUP_SHARE = 0.1
"""Share of the steps ``warmup-cosine`` rises linearly to ``lr`` before the cosine decay to 0."""


def _make_schedule(
    optimizer: torch.optim.Optimizer, cfg: Hyperparameters, steps_per_epoch: int
) -> tuple[torch.optim.lr_scheduler.LRScheduler | None, bool]:
    """The schedule and whether it steps per batch (True) or per epoch (False).

    Per epoch: step = StepLR(1, gamma), cosine = CosineAnnealingLR(epochs). Per batch over the
    whole run: onecycle = OneCycleLR(max_lr=lr, pct_start `ONECYCLE_WARMUP`, cosine annealing,
    momentum cycled), warmup-cosine = linear warmup over `WARMUP_SHARE` of the steps, then cosine
    to 0.
    """
    total = max(cfg.epochs * steps_per_epoch, 1)
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=cfg.step_gamma), False
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(cfg.epochs, 1)), False
    if cfg.schedule == "onecycle":
        if total < 3:  # too short for a cycle (torch divides by zero): the peak rate throughout
            return None, False
        # at least two warmup steps: a shorter warmup phase makes torch divide by zero
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=cfg.lr, total_steps=total, pct_start=max(ONECYCLE_WARMUP, 2 / total)
        ), True
    if cfg.schedule == "warmup-cosine":
        warm = max(1, round(total * WARMUP_SHARE))

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(total - warm, 1))))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor), True
    return None, False


# ==================================================================================================
# augmentation (batched tensor ops on the device; no per-sample Python)
# ==================================================================================================


def crop_padding(side: int) -> int:
    """Pixels of reflect padding for random crops: side / 8 (28 -> 3, 32 -> 4, 8 -> 1)."""
    return max(1, side // 8)


def augment_batch(x: torch.Tensor, augment: str, generator: torch.Generator) -> torch.Tensor:
    """A randomly augmented copy of the NCHW batch ``x``: ``crop`` pads by `crop_padding`
    (reflect) and takes a random crop of the original size per image; ``flip`` flips each image
    horizontally with probability 1/2. Draws come from ``generator`` (reproducible)."""
    n, _, h, w = x.shape
    if "crop" in augment:
        p = min(crop_padding(min(h, w)), h - 1, w - 1)
        padded = F.pad(x, (p, p, p, p), mode="reflect")
        dy = torch.randint(0, 2 * p + 1, (n,), generator=generator, device=x.device)
        dx = torch.randint(0, 2 * p + 1, (n,), generator=generator, device=x.device)
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
        padded = padded.gather(2, rows.expand(n, x.shape[1], h, padded.shape[3]))
        x = padded.gather(3, cols.expand(n, x.shape[1], h, w))
    if "flip" in augment:
        flip = torch.rand(n, generator=generator, device=x.device) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    return x


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
def _translate_oom(device: torch.device, cfg: Hyperparameters, where: Callable[[], str]) -> Iterator[None]:
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


def _diverged(epoch: int, what: str, value: float, cfg: Hyperparameters) -> TrainingError:
    kind = "nan" if math.isnan(value) else "inf"
    return TrainingError(
        f"training diverged at epoch {epoch}: {what} is {kind} (lr {cfg.lr:g} may be too high)"
    )


def train(
    module: nn.Module,
    data: LoadedDataset,
    hp: Hyperparameters | Mapping[str, Any] | None = None,
    device: str | torch.device | None = "cpu",
    on_epoch: Callable[[EpochResult], bool | None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    *,
    acceleration: Acceleration | None = None,
    compile_key: str | None = None,
) -> TrainResult:
    """Train `module` in place on `data` with hyperparameters `hp`; return the `TrainResult`.

    `module` must map a float32 NCHW batch of `data.input_shape` to `data.num_classes` logits; it
    is moved to `device` (see `select_device`). `hp` is anything `Hyperparameters.of` accepts.
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
    cfg = Hyperparameters.of(hp)
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
        steps_per_epoch = max(math.ceil(n_train / cfg.batch_size), 1)
        schedule, per_step = _make_schedule(optimizer, cfg, steps_per_epoch)
        augment = effective_augment(cfg.augment, data.hflip, cfg.epochs * steps_per_epoch,
                                    cfg.augment_from_steps)

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
                if augment != "none":
                    xb = augment_batch(xb, augment, generator)
                with autocast(dev, acc):
                    logits = forward(xb)
                loss = F.cross_entropy(logits.float(), yb, label_smoothing=cfg.label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if schedule is not None and per_step:
                    schedule.step()
                with torch.no_grad():
                    loss_sum += loss.detach().double() * yb.shape[0]
                    correct += (logits.argmax(dim=1) == yb).sum()
            _sync(dev)
            seconds = time.perf_counter() - t0
            train_seconds += seconds
            train_loss = float(loss_sum.item()) / max(n_train, 1)
            if not math.isfinite(train_loss):
                raise _diverged(epoch + 1, "loss", train_loss, cfg)
            if schedule is not None and not per_step:
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
                class_ovr_acc={m.class_name: m.one_vs_rest_accuracy for m in per_class},
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

"""The training recipe on real data: augmentation (flips only where the dataset allows them),
label smoothing, OneCycle and warmup-cosine schedules, SGD with Nesterov momentum, no weight decay
on BatchNorm and biases; and `nasdb reproduce` honouring all of it."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nasdb.ingest import EventStore, Projector
from nasdb.read import get_dataset
from nasdb.schema import Database
from nasdb.search import Architecture, ConvBlock, GlobalAvgPool, Hyperparameters, SepConv
from nasdb.search._hyperparameters import (
    AUTO_AUGMENT_STEPS,
    MODERN_AUGMENT_FROM_STEPS,
    allowed_augment,
    effective_augment,
)
from nasdb.search.strategies import StudySpace
from nasdb.steer import Proposal, propose
from nasdb.trainers.build import build_seeded
from nasdb.trainers.datasets import FASHION_MNIST_CLASSES, LoadedDataset, load_dataset
from nasdb.trainers.loop import (
    EpochResult,
    _make_optimizer,
    _make_schedule,
    augment_batch,
    crop_padding,
    train,
)
from nasdb.trainers.registry import register_dataset, registration
from nasdb.trainers.reproduce import reproduce
from nasdb.trainers.worker import Worker

FMNIST = "/usr/share/datasets/fashion-mnist"


@pytest.fixture(scope="module")
def digits() -> LoadedDataset:
    return load_dataset("digits")


def test_flips_only_where_the_dataset_allows_them(db: Database) -> None:
    digits, fmnist = load_dataset("digits"), load_dataset("fashion-mnist", FMNIST, limit=200)
    assert (digits.hflip, fmnist.hflip) == (False, True)
    store = EventStore(db=db)
    register_dataset(store, "digits")
    register_dataset(store, "fashion-mnist", path=FMNIST, limit=200)
    Projector(db).catch_up()
    # the choice is recorded with the dataset ...
    assert registration(store, "digits")["hflip"] is False
    assert registration(store, "fashion-mnist")["hflip"] is True
    # ... and what a study samples follows it
    space, rng = StudySpace.modern(), __import__("random").Random(0)
    for name, expected in (("digits", "crop"), ("fashion-mnist", "crop-flip")):
        info = get_dataset(db, name)
        for _ in range(5):
            hp = space.sample(info, rng)[1]
            assert (hp.augment, hp.augment_from_steps) == ("auto", MODERN_AUGMENT_FROM_STEPS)
            # a long run gets crops, and flips only where the dataset allows them
            at = hp.augment_from_steps
            assert effective_augment(hp.augment, info.hflip, at, at) == expected
            assert effective_augment(hp.augment, info.hflip, at - 1, at) == "none"
    assert allowed_augment("crop-flip", False) == "crop"
    assert allowed_augment("flip", False) == "none"
    assert allowed_augment("crop-flip", True) == "crop-flip"


class Spy(nn.Module):
    """A linear digits classifier that keeps every training batch it sees in ``seen``."""

    def __init__(self, seen: list[torch.Tensor]) -> None:
        super().__init__()
        self.seen = seen
        self.linear = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.seen.append(x.detach().clone())
        return self.linear(x.flatten(1))


def test_the_loop_never_flips_digits_even_when_asked(digits: LoadedDataset) -> None:
    seen: list[torch.Tensor] = []

    train(Spy(seen), digits, {"epochs": 1, "augment": "flip", "batch_size": 4096,
                          "early_stop_patience": 0})
    # one full batch in permutation order, unflipped: the same multiset of images
    batch = seen[0]
    assert sorted(map(tuple, batch.flatten(1).tolist())) == sorted(
        map(tuple, digits.x_train.flatten(1).tolist()))


def test_auto_augmentation_leaves_a_short_run_unaugmented(digits: LoadedDataset) -> None:
    seen: list[torch.Tensor] = []

    def images(hp: dict[str, object]) -> set[tuple[float, ...]]:
        seen.clear()
        train(Spy(seen), digits, {"batch_size": 4096, "early_stop_patience": 0, **hp})
        return {tuple(row) for row in torch.cat(seen).flatten(1).tolist()}

    originals = {tuple(row) for row in digits.x_train.flatten(1).tolist()}
    assert images({"epochs": 1, "augment": "auto"}) == originals  # 1 step: no augmentation
    assert images({"epochs": 1, "augment": "crop"}) != originals  # the spy sees crops
    # auto augments from the run's recorded threshold: 2 steps here, and this run takes 2
    assert images({"epochs": 2, "augment": "auto", "augment_from_steps": 2}) != originals
    assert images({"epochs": 1, "augment": "auto", "augment_from_steps": 2}) == originals


def test_payloads_from_before_the_threshold_was_recorded_keep_theirs() -> None:
    """A proposal recorded without ``augment_from_steps`` trained with crops and flips from
    `AUTO_AUGMENT_STEPS` steps; reading it back keeps that, so `nasdb reproduce` trains it the
    same way. The modern recipe records its own, later threshold."""
    old = Hyperparameters.from_json({"epochs": 9, "augment": "auto"})
    assert old.augment_from_steps == AUTO_AUGMENT_STEPS == 2000
    assert StudySpace.modern().hyperparameters.base.augment_from_steps == MODERN_AUGMENT_FROM_STEPS
    assert Hyperparameters.from_json(old.to_json()) == old
    with pytest.raises(Exception, match=r"augment_from_steps must be an integer >= 0, got -1"):
        Hyperparameters(augment_from_steps=-1)


def test_augment_batch_crops_and_flips_as_documented() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 1 * 8 * 8, dtype=torch.float32).reshape(2, 1, 8, 8)
    flipped = augment_batch(x, "flip", g)
    for i in range(2):
        assert torch.equal(flipped[i], x[i]) or torch.equal(flipped[i], x[i].flip(2))
    g = torch.Generator().manual_seed(1)
    big = torch.randn(64, 1, 28, 28)
    flips = augment_batch(big, "flip", g)
    n_flipped = sum(not torch.equal(flips[i], big[i]) for i in range(64))
    assert 16 < n_flipped < 48
    p = crop_padding(28)
    assert (p, crop_padding(32), crop_padding(8)) == (3, 4, 1)
    cropped = augment_batch(big, "crop", torch.Generator().manual_seed(2))
    assert cropped.shape == big.shape
    padded = F.pad(big, (p, p, p, p), mode="reflect")
    moved = 0
    for i in range(64):  # each crop is a window of the reflect-padded image
        windows = [(dy, dx) for dy in range(2 * p + 1) for dx in range(2 * p + 1)
                   if torch.equal(padded[i, :, dy:dy + 28, dx:dx + 28], cropped[i])]
        assert windows
        moved += (p, p) not in windows
    assert moved > 32


def test_label_smoothing_is_the_loss_the_loop_minimises(digits: LoadedDataset) -> None:
    torch.manual_seed(0)
    module = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    for p in module.parameters():
        nn.init.zeros_(p)
    seen: list[EpochResult] = []
    # zero weights: every logit 0, so the first batches' loss is log(10) with or without
    # smoothing; lr 1e-12 keeps the weights there for the whole epoch
    train(module, digits, {"epochs": 1, "lr": 1e-12, "label_smoothing": 0.2,
                           "early_stop_patience": 0}, on_epoch=seen.append)
    assert seen[0].train_loss == pytest.approx(math.log(10), rel=1e-6)
    logits = torch.tensor([[4.0, 0.0, 0.0]])
    plain = F.cross_entropy(logits, torch.tensor([0]))
    smoothed = F.cross_entropy(logits, torch.tensor([0]), label_smoothing=0.3)
    assert smoothed > plain
    # a confident model pays for its confidence only with smoothing: trained with it, logits
    # stay smaller
    sizes = {}
    for ls in (0.0, 0.3):
        torch.manual_seed(0)
        m = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
        train(m, digits, {"epochs": 8, "lr": 0.05, "optimizer": "adam", "label_smoothing": ls,
                          "early_stop_patience": 0})
        with torch.no_grad():
            sizes[ls] = m(digits.x_test).abs().mean().item()
    assert sizes[0.3] < sizes[0.0] * 0.8


def _lrs(schedule: str, epochs: int = 4, steps: int = 10) -> list[float]:
    module = nn.Linear(2, 2)
    cfg = Hyperparameters(optimizer="sgd-nesterov", lr=0.4, epochs=epochs, schedule=schedule)
    opt = _make_optimizer(module, cfg)
    sched, per_step = _make_schedule(opt, cfg, steps)
    assert per_step
    out = []
    for _ in range(epochs * steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        assert sched is not None
        sched.step()
    return out


def test_onecycle_rises_to_lr_then_anneals() -> None:
    lrs = _lrs("onecycle")
    peak = lrs.index(max(lrs))
    assert max(lrs) == pytest.approx(0.4, rel=1e-3)
    assert 8 <= peak <= 11  # a quarter of the 40 steps
    assert lrs[0] == pytest.approx(0.4 / 25, rel=1e-3)
    assert all(a <= b for a, b in itertools.pairwise(lrs[:peak + 1]))
    assert all(a >= b for a, b in itertools.pairwise(lrs[peak:]))
    assert lrs[-1] < 0.001


def test_onecycle_runs_of_a_few_steps_train() -> None:
    # torch's OneCycleLR divides by zero when its warmup is shorter than two steps
    for steps in range(1, 9):
        module = nn.Linear(2, 2)
        cfg = Hyperparameters(optimizer="sgd-nesterov", lr=0.4, epochs=1, schedule="onecycle")
        opt = _make_optimizer(module, cfg)
        sched, _ = _make_schedule(opt, cfg, steps)
        assert (sched is None) == (steps < 3)
        for _ in range(steps):
            opt.step()
            if sched is not None:
                sched.step()
        assert all(lr <= 0.4 for lr in (g["lr"] for g in opt.param_groups))


def test_warmup_cosine_warms_up_linearly_then_follows_a_cosine() -> None:
    lrs = _lrs("warmup-cosine")
    assert lrs[:4] == pytest.approx([0.1, 0.2, 0.3, 0.4])  # 10% of 40 steps
    assert lrs[4] == pytest.approx(0.4)
    mid = 4 + 18
    assert lrs[mid] == pytest.approx(0.4 * 0.5 * (1 + math.cos(math.pi * 18 / 36)))
    assert all(a >= b for a, b in itertools.pairwise(lrs[4:]))


def test_sgd_nesterov_and_no_weight_decay_on_batchnorm_and_biases() -> None:
    module = build_seeded(Architecture.of(ConvBlock(8, 3), SepConv(16, 3), GlobalAvgPool()),
                          (1, 8, 8), 10, 0)
    cfg = Hyperparameters(optimizer="sgd-nesterov", lr=0.1, weight_decay=5e-4, wd_norm_bias=False)
    opt = _make_optimizer(module, cfg)
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["nesterov"] is True
    decayed, free = opt.param_groups
    assert decayed["weight_decay"] == 5e-4 and free["weight_decay"] == 0.0
    assert all(p.ndim >= 2 for p in decayed["params"])  # conv and dense weights
    norm_and_bias = {id(p) for n, p in module.named_parameters() if p.ndim < 2}
    assert {id(p) for p in free["params"]} == norm_and_bias and norm_and_bias
    legacy = _make_optimizer(module, Hyperparameters(optimizer="sgd", weight_decay=5e-4))
    assert len(legacy.param_groups) == 1 and legacy.defaults["nesterov"] is False


def test_reproduce_honours_the_whole_recipe(db: Database) -> None:
    store = EventStore(db=db)
    register_dataset(store, "fashion-mnist", path=FMNIST, limit=300)
    Projector(db).catch_up()
    ds = get_dataset(db, "fashion-mnist")
    assert ds.classes == FASHION_MNIST_CLASSES and ds.hflip
    hp = Hyperparameters.from_json({
        "optimizer": "sgd-nesterov", "lr": 0.1, "weight_decay": 5e-4, "batch_size": 32,
        "epochs": 2, "schedule": "onecycle", "early_stop_patience": 0, "augment": "crop-flip",
        "label_smoothing": 0.1, "wd_norm_bias": False, "seed": 3,
    })
    arch = Architecture.of(ConvBlock(8, 3, 2), SepConv(16, 3, 2), GlobalAvgPool())
    [model_id] = propose(store, ds, [Proposal(arch, hp, "handcrafted")])
    Projector(db).catch_up()
    Worker(db).run(idle_exit=True)
    recorded = next(e for e in store.read_stream(f"model-{model_id}")
                    if e.type == "ArchitectureProposed").data["hyperparameters"]
    assert {k: recorded[k] for k in ("augment", "label_smoothing", "wd_norm_bias", "schedule",
                                     "optimizer")} == {
        "augment": "crop-flip", "label_smoothing": 0.1, "wd_norm_bias": False,
        "schedule": "onecycle", "optimizer": "sgd-nesterov"}
    report = reproduce(store, model_id)
    assert report.same_predictions and report.difference == 0.0

"""The words events, read models, the query language and the UI share: each defined once, here.

A module that needs one of these lists imports it from here (or from a package that re-exports
it); writing the list out again is how two copies drift apart.

The job state machine. A model's training job moves by events of its stream alone:

    (none) --TrainingRequested--> queued --JobClaimed--> claimed --TrainingCompleted--> done
                                                                 --TrainingFailed-----> failed
           any state --TrainingCancelled--> cancelled;  a finished job --TrainingRequested--> queued

`JOB_TRANSITIONS` is that table (event type -> the state it leads to; every other event leaves the
state as it is) and `next_job_state` applies it. The worker's claim decision and the `jobs` read
model fold a stream with it. A model's `status` (`MODEL_STATUSES`) is the same machine seen from
the model: ``proposed`` before any request, and ``training`` for a claimed job.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "AUGMENTATIONS",
    "FINISHED_JOB_STATES",
    "JOB_STATES",
    "JOB_TRANSITIONS",
    "MODEL_STATUSES",
    "OPTIMIZERS",
    "ORIGINS",
    "SCHEDULES",
    "JobState",
    "ModelStatus",
    "Origin",
    "model_status",
    "next_job_state",
]

Origin = Literal["sampled", "ablation", "variation", "handcrafted", "mutation", "reference"]
"""How a model came to be (ArchitectureProposed.origin)."""
ORIGINS: tuple[str, ...] = get_args(Origin)

OPTIMIZERS: tuple[str, ...] = ("adam", "adamw", "sgd", "rmsprop", "sgd-nesterov")
"""The optimizers the training loop builds (Hyperparameters.optimizer)."""
SCHEDULES: tuple[str, ...] = ("none", "step", "cosine", "onecycle", "warmup-cosine")
"""The learning-rate schedules the training loop builds (Hyperparameters.schedule): per epoch
(none, step, cosine) or per batch (onecycle, warmup-cosine)."""
AUGMENTATIONS: tuple[str, ...] = ("none", "crop", "flip", "crop-flip", "auto")
"""Training-time augmentation (Hyperparameters.augment): random crop with reflect padding,
horizontal flip, or both; ``auto`` chooses by the run's length (`effective_augment`)."""

JobState = Literal["queued", "claimed", "done", "failed", "cancelled"]
JOB_STATES: tuple[str, ...] = get_args(JobState)
FINISHED_JOB_STATES: tuple[str, ...] = ("done", "failed", "cancelled")

JOB_TRANSITIONS: dict[str, JobState] = {
    "TrainingRequested": "queued",
    "JobClaimed": "claimed",
    "TrainingCompleted": "done",
    "TrainingFailed": "failed",
    "TrainingCancelled": "cancelled",
}

ModelStatus = Literal["proposed", "queued", "training", "done", "failed", "cancelled"]
MODEL_STATUSES: tuple[str, ...] = get_args(ModelStatus)


def next_job_state(state: JobState | None, event_type: str) -> JobState | None:
    """The job's state after an event of ``event_type``; None while no training was requested."""
    return JOB_TRANSITIONS.get(event_type, state)


def model_status(state: JobState | None) -> ModelStatus:
    """A job state as the model's `status` shows it."""
    if state is None:
        return "proposed"
    return "training" if state == "claimed" else state

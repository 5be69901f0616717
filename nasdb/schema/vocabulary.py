"""The words events, read models, the query language and the UI share: each defined once, here.

A module that needs one of these lists imports it from here (or from a package that re-exports
it); writing the list out again is how two copies drift apart.

The job state machine. A model's training job moves by events of its stream alone:

    (none) --TrainingRequested--> queued --JobClaimed--> claimed --TrainingCompleted--> done
                                                                 --TrainingFailed-----> failed
                                         claimed --JobClaimed--> claimed (a retry: the lease ran out)
    (none), queued or claimed --TrainingCancelled--> cancelled
    done, failed or cancelled --TrainingRequested--> queued

`JOB_TRANSITIONS` is that table (event type -> the states it may follow and the state it leads
to; every other event leaves the state as it is), and `job_transition` applies it. An event of
the table in any other state is an illegal transition: `job_transition` raises
`IllegalJobTransition`, and a fold ignores that event whole. The worker's claim decision and the
`jobs` / `models.status` read models fold a stream with it (the projector records the illegal
event as a projection failure and skips it), so both see the same job. A model's `status`
(`MODEL_STATUSES`) is the same machine seen from the model: ``proposed`` before any request and
``training`` for a claimed job (`model_status` and its inverse `job_state`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from nasdb.schema.errors import InvalidEvent

__all__ = [
    "AUGMENTATIONS",
    "FINISHED_JOB_STATES",
    "JOB_STATES",
    "JOB_TRANSITIONS",
    "MODEL_STATUSES",
    "OPTIMIZERS",
    "ORIGINS",
    "SCHEDULES",
    "IllegalJobTransition",
    "JobState",
    "JobTransition",
    "ModelStatus",
    "Origin",
    "job_state",
    "job_transition",
    "model_status",
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


@dataclass(frozen=True)
class JobTransition:
    """An event's edge of the job state machine: the states it may follow, the state it leads to."""

    sources: tuple[JobState | None, ...]
    target: JobState


JOB_TRANSITIONS: dict[str, JobTransition] = {
    "TrainingRequested": JobTransition((None, "done", "failed", "cancelled"), "queued"),
    "JobClaimed": JobTransition(("queued", "claimed"), "claimed"),
    "TrainingCompleted": JobTransition(("claimed",), "done"),
    "TrainingFailed": JobTransition(("claimed",), "failed"),
    "TrainingCancelled": JobTransition((None, "queued", "claimed"), "cancelled"),
}

ModelStatus = Literal["proposed", "queued", "training", "done", "failed", "cancelled"]
MODEL_STATUSES: tuple[str, ...] = get_args(ModelStatus)


class IllegalJobTransition(InvalidEvent):
    """An event the job state machine does not allow in the job's current state."""

    def __init__(self, state: JobState | None, event_type: str) -> None:
        self.state = state
        self.event_type = event_type
        names = [s or "never requested" for s in JOB_TRANSITIONS[event_type].sources]
        allowed = " or ".join(names) if len(names) < 3 else \
            f"{', '.join(names[:-1])} or {names[-1]}"
        super().__init__(f"{event_type} cannot follow a {state or 'never requested'} job: only a "
                         f"{allowed} one")


def job_transition(state: JobState | None, event_type: str) -> JobState | None:
    """The job's state after an event of ``event_type``; None while no training was requested.

    Raises `IllegalJobTransition` for an event of `JOB_TRANSITIONS` that cannot follow ``state``.
    """
    edge = JOB_TRANSITIONS.get(event_type)
    if edge is None:
        return state
    if state not in edge.sources:
        raise IllegalJobTransition(state, event_type)
    return edge.target


def model_status(state: JobState | None) -> ModelStatus:
    """A job state as the model's `status` shows it."""
    if state is None:
        return "proposed"
    return "training" if state == "claimed" else state


def job_state(status: ModelStatus) -> JobState | None:
    """The job state a model's `status` shows (the inverse of `model_status`)."""
    if status == "proposed":
        return None
    return "claimed" if status == "training" else status

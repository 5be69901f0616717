"""Event payload types: the catalogue of everything that can happen in nasdb.

Each payload is a frozen pydantic model with a stable ``TYPE`` name (past tense) and a payload
schema ``VERSION``. The store validates a payload against its type on append and refuses unknown
types. Old payloads are never rewritten: `upcast` lifts a stored payload of an older version to the
current one with small ``upcast_vN_vM`` functions registered in `UPCASTERS`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from nasdb.schema.errors import InvalidEvent
from nasdb.schema.metrics import per_class_metrics
from nasdb.schema.vocabulary import Origin

JsonDict = dict[str, Any]

# --- the database's bounds ------------------------------------------------------------------
# What the read-model columns can hold, checked on append (so a value no column can hold is a
# one-line error at the command and nothing is appended) and again when the projector reads a
# payload (so an old log holding such an event records a projection failure instead of stopping
# the projector). Floats must be finite everywhere (``allow_inf_nan=False`` on `Payload`).
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1  # PostgreSQL integer
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # PostgreSQL bigint
MAX_LEASE_SECONDS = 10_000_000.0  # ~115 days: a lease end must stay a valid timestamp


def int32(default: Any = ..., *, ge: int = INT32_MIN) -> Any:
    """A field stored in an ``integer`` column."""
    return Field(default, ge=ge, le=INT32_MAX)


def int64(default: Any = ..., *, ge: int = INT64_MIN) -> Any:
    """A field stored in a ``bigint`` column."""
    return Field(default, ge=ge, le=INT64_MAX)


def lease_seconds() -> Any:
    return Field(gt=0, le=MAX_LEASE_SECONDS)


Int32 = Annotated[int, Field(ge=INT32_MIN, le=INT32_MAX)]

# Keys of ``ArchitectureProposed.hyperparameters`` that the projection stores in typed columns.
_HP_INT32 = ("batch_size", "epochs")
_HP_FLOAT = ("lr", "weight_decay")


class Payload(BaseModel):
    """Base of every event payload: frozen, no unknown keys, finite floats.

    Building one with a value that does not fit raises `InvalidEvent` (the message validation on
    append gives), never pydantic's own error: producers build payloads from user input.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as e:
            raise InvalidEvent(_invalid(self.TYPE, e)) from e


def _invalid(event_type: str, e: ValidationError) -> str:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(payload)'}: "
        f"{err['msg'].removeprefix('Value error, ')}"
        for err in e.errors()
    )
    return f"{event_type} payload is invalid: {problems}"


# --- dataset-<id> ---------------------------------------------------------------------------


class DatasetRegistered(Payload):
    TYPE = "DatasetRegistered"
    dataset_id: str
    name: str
    kind: str
    source: str
    fingerprint: str
    shape: list[Annotated[int, Field(ge=1, le=INT32_MAX)]] = Field(min_length=3, max_length=3)
    classes: list[str] = Field(min_length=2)
    train_size: int = int32(ge=1)
    val_size: int = int32(ge=0)
    test_size: int = int32(ge=1)
    val_seed: int = int32(0)
    limit: int | None = int32(None, ge=1)
    #: Whether training may flip images horizontally (None: registered before this was recorded).
    hflip: bool | None = None


# --- study-<id> -----------------------------------------------------------------------------


class StudyCreated(Payload):
    """v2: the objective ``acc`` is test accuracy; validation accuracy is ``val_acc`` (v1's
    ``acc`` meant best validation accuracy, and `upcast_study_created_v1_v2` renames it)."""

    TYPE = "StudyCreated"
    VERSION = 2
    study_id: str
    dataset_id: str
    strategy: str
    settings: JsonDict = Field(default_factory=dict)
    space: JsonDict = Field(default_factory=dict)
    objectives: list[str] = Field(default_factory=lambda: ["val_acc", "params"])
    budget: JsonDict = Field(default_factory=dict)
    previous_study_id: str | None = None


class StudyPaused(Payload):
    TYPE = "StudyPaused"
    reason: str = ""


class StudyResumed(Payload):
    TYPE = "StudyResumed"


class StudyStopped(Payload):
    TYPE = "StudyStopped"
    reason: str = ""


class StudyCompleted(Payload):
    TYPE = "StudyCompleted"
    reason: str = ""


class SearchSpaceRefined(Payload):
    TYPE = "SearchSpaceRefined"
    space: JsonDict
    changes: list[str] = Field(default_factory=list)
    next_study_id: str | None = None


class SearchStepTaken(Payload):
    """One step of a study's driver: the models it proposed (appended in the same transaction).

    Appended with the study stream's expected version, so two drivers of one study cannot both
    take step ``step``; ``state`` is the strategy's bookkeeping for the step (bracket, rung, ...).
    """

    TYPE = "SearchStepTaken"
    step: int = Field(ge=1)
    model_ids: list[str] = Field(default_factory=list)
    note: str = ""
    state: JsonDict = Field(default_factory=dict)


# --- model-<id> -----------------------------------------------------------------------------


class ArchitectureProposed(Payload):
    TYPE = "ArchitectureProposed"
    model_id: str
    dataset_id: str
    study_id: str | None = None
    origin: Origin
    parent_id: str | None = None
    changes: list[str] = Field(default_factory=list)
    architecture: JsonDict
    hyperparameters: JsonDict
    glyph: str
    layer_types: list[str] = Field(default_factory=list)
    depth: int = int32(ge=1)
    params: int = int64(ge=0)
    flops: int = int64(ge=0)
    input_shape: list[int] = Field(min_length=3, max_length=3)
    num_classes: int = int32(ge=2)
    predicted_acc: float | None = None
    proposal: JsonDict = Field(default_factory=dict)

    @field_validator("hyperparameters")
    @classmethod
    def _hyperparameters_fit_their_columns(cls, hp: JsonDict) -> JsonDict:
        for key in _HP_INT32:
            value = hp.get(key)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int)
                or not INT32_MIN <= value <= INT32_MAX
            ):
                raise ValueError(f"{key} must be an integer from {INT32_MIN} to {INT32_MAX}, "
                                 f"not {value!r}")
        for key in _HP_FLOAT:
            value = hp.get(key)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
                or value != value or value in (float("inf"), float("-inf"))
            ):
                raise ValueError(f"{key} must be a finite number, not {value!r}")
        return hp


class TrainingRequested(Payload):
    TYPE = "TrainingRequested"
    priority: int = int32(0)
    epochs: int | None = int32(None, ge=1)
    resume_from: str | None = None


class JobClaimed(Payload):
    TYPE = "JobClaimed"
    worker: str
    attempt: int = int32(ge=1)
    lease_seconds: float = lease_seconds()
    device: str = "cpu"


class LeaseRenewed(Payload):
    TYPE = "LeaseRenewed"
    worker: str
    lease_seconds: float = lease_seconds()


class EpochCompleted(Payload):
    """v2: ``class_acc`` is each class's accuracy on the validation split in `nasdb.schema.metrics`'
    sense (its recall); ``class_ovr_acc`` the one-vs-rest accuracy that v1 called ``class_acc``."""

    TYPE = "EpochCompleted"
    VERSION = 2
    epoch: int = int32(ge=1)
    attempt: int = int32(1, ge=1)
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    class_acc: dict[str, float] = Field(default_factory=dict)
    class_ovr_acc: dict[str, float] = Field(default_factory=dict)
    lr: float
    seconds: float


class TrainingCompleted(Payload):
    """v2: ``class_accuracy`` is each class's accuracy in `nasdb.schema.metrics`' sense (its
    recall on the test split); ``class_ovr_accuracy`` the one-vs-rest accuracy that v1 called
    ``class_accuracy`` (`upcast_training_completed_v1_v2` derives both from the confusion matrix).
    """

    TYPE = "TrainingCompleted"
    VERSION = 2
    attempt: int = int32(1, ge=1)
    epochs_trained: int = int32(ge=0)
    test_acc: float
    test_loss: float
    class_names: list[str]
    class_accuracy: list[float]
    class_ovr_accuracy: list[float] = Field(default_factory=list)
    class_precision: list[float]
    class_recall: list[float]
    class_specificity: list[float]
    class_support: list[Int32]
    confusion_matrix: list[list[int]]
    predictions: str = Field(description="base64 of one uint8 label per test image")
    predictions_digest: str
    latency_ms: float
    train_seconds: float
    checkpoint: str | None = None


class TrainingFailed(Payload):
    TYPE = "TrainingFailed"
    attempt: int = int32(1, ge=1)
    error: str
    epoch: int | None = int32(None)


class TrainingCancelled(Payload):
    TYPE = "TrainingCancelled"
    reason: str = ""


class PriorityChanged(Payload):
    TYPE = "PriorityChanged"
    priority: int = int32()


class Pinned(Payload):
    TYPE = "Pinned"


class Unpinned(Payload):
    TYPE = "Unpinned"


class Tagged(Payload):
    TYPE = "Tagged"
    tag: str = Field(min_length=1, max_length=64)


class Untagged(Payload):
    TYPE = "Untagged"
    tag: str


class Noted(Payload):
    TYPE = "Noted"
    text: str = Field(min_length=1)


class AccuracyPredicted(Payload):
    TYPE = "AccuracyPredicted"
    predicted_acc: float
    lower: float | None = None
    upper: float | None = None
    recommender_id: str


# --- worker-<id> ----------------------------------------------------------------------------


class WorkerStarted(Payload):
    TYPE = "WorkerStarted"
    worker: str
    host: str
    pid: int = int32()
    device: str
    lease_seconds: float | None = Field(None, gt=0, le=MAX_LEASE_SECONDS)


class WorkerStopped(Payload):
    TYPE = "WorkerStopped"
    worker: str
    jobs_done: int = int32(0, ge=0)
    reason: str = ""


class WorkerHeartbeat(Payload):
    """An idle worker is alive; its ``workers`` row shows it lost once ``lease_seconds`` pass
    without a heartbeat (or any other event from it)."""

    TYPE = "WorkerHeartbeat"
    worker: str
    lease_seconds: float = lease_seconds()


# --- recommender-<id> -----------------------------------------------------------------------


class RecommenderTrained(Payload):
    TYPE = "RecommenderTrained"
    recommender_id: str
    kind: str
    artifact: str
    data_fingerprint: str
    training_rows: int
    metrics: JsonDict = Field(default_factory=dict)


# --- session-<id> ---------------------------------------------------------------------------


class UiAction(Payload):
    TYPE = "UiAction"
    action: str
    detail: JsonDict = Field(default_factory=dict)


PAYLOAD_TYPES: dict[str, type[Payload]] = {
    cls.TYPE: cls
    for cls in (
        DatasetRegistered,
        StudyCreated,
        StudyPaused,
        StudyResumed,
        StudyStopped,
        StudyCompleted,
        SearchSpaceRefined,
        SearchStepTaken,
        ArchitectureProposed,
        TrainingRequested,
        JobClaimed,
        LeaseRenewed,
        EpochCompleted,
        TrainingCompleted,
        TrainingFailed,
        TrainingCancelled,
        PriorityChanged,
        Pinned,
        Unpinned,
        Tagged,
        Untagged,
        Noted,
        AccuracyPredicted,
        WorkerStarted,
        WorkerStopped,
        WorkerHeartbeat,
        RecommenderTrained,
        UiAction,
    )
}

Upcaster = Callable[[JsonDict], JsonDict]
# (type, stored version) -> function lifting that payload one version up.
UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def upcaster(event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register a function lifting ``event_type`` payloads from ``from_version`` one version up.

    Upcasters are idempotent (lifting an already lifted payload changes nothing), so a payload
    read twice through `upcast` stays right."""

    def register(fn: Upcaster) -> Upcaster:
        UPCASTERS[(event_type, from_version)] = fn
        return fn

    return register


@upcaster("TrainingCompleted", 1)
def upcast_training_completed_v1_v2(data: JsonDict) -> JsonDict:
    """v1's ``class_accuracy`` was one-vs-rest accuracy: keep it as ``class_ovr_accuracy`` and
    make ``class_accuracy`` each class's recall, computed from the recorded confusion matrix (or,
    when the matrix is empty, the recorded recall: the same ratio)."""
    if "class_ovr_accuracy" in data:
        return data
    names = data.get("class_names") or []
    confusion = data.get("confusion_matrix") or []
    if confusion and sum(sum(row) for row in confusion) > 0:
        accuracy = [m.accuracy for m in per_class_metrics(confusion, names)]
    else:
        accuracy = list(data.get("class_recall") or [])
    return {**data, "class_ovr_accuracy": data.get("class_accuracy") or [],
            "class_accuracy": accuracy}


@upcaster("EpochCompleted", 1)
def upcast_epoch_completed_v1_v2(data: JsonDict) -> JsonDict:
    """v1's ``class_acc`` was one-vs-rest accuracy on the validation split: it becomes
    ``class_ovr_acc``. Its recall per class was never recorded (a v1 epoch kept no confusion
    matrix), so ``class_acc`` is empty: unknown, rather than the old number under the new name."""
    if "class_ovr_acc" in data:
        return data
    return {**data, "class_ovr_acc": data.get("class_acc") or {}, "class_acc": {}}


@upcaster("StudyCreated", 1)
def upcast_study_created_v1_v2(data: JsonDict) -> JsonDict:
    """v1's objective ``acc`` was best validation accuracy: it is ``val_acc`` now (``acc`` is test
    accuracy everywhere), so an old study's strategy keeps ranking exactly as it did."""
    objectives = data.get("objectives")
    if objectives is None:
        return {**data, "objectives": ["val_acc", "params"]}
    return {**data, "objectives": ["val_acc" if o == "acc" else o for o in objectives]}


def validate_payload(event_type: str, data: JsonDict) -> JsonDict:
    """Return ``data`` normalised by its type's schema; raise `InvalidEvent` if it does not fit."""
    cls = PAYLOAD_TYPES.get(event_type)
    if cls is None:
        known = ", ".join(sorted(PAYLOAD_TYPES))
        raise InvalidEvent(f"unknown event type {event_type!r}; known types: {known}")
    try:
        return cls.model_validate(data).model_dump(mode="json")
    except ValidationError as e:
        raise InvalidEvent(_invalid(event_type, e)) from e


def current_version(event_type: str) -> int:
    """The payload schema version new events of this type are written with."""
    cls = PAYLOAD_TYPES.get(event_type)
    return cls.VERSION if cls is not None else 1


def upcast(event_type: str, version: int, data: JsonDict) -> JsonDict:
    """Lift a stored payload to the current version of its type, one registered step at a time."""
    target = current_version(event_type)
    while version < target:
        step = UPCASTERS.get((event_type, version))
        if step is None:
            raise InvalidEvent(f"no upcaster for {event_type} v{version} -> v{version + 1}")
        data = step(data)
        version += 1
    return data


def payload(event_type: str, data: JsonDict) -> Payload:
    """The typed payload object of a stored event (after upcasting); `InvalidEvent` if it does not
    fit its type."""
    cls = PAYLOAD_TYPES.get(event_type)
    if cls is None:
        raise InvalidEvent(f"unknown event type {event_type!r}")
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        raise InvalidEvent(f"{event_type} payload is invalid: {e.errors()[0]['msg']}") from e

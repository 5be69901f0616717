"""Event payloads as producers build them, and the job state machine defined once."""

from __future__ import annotations

import pytest

from nasdb.ingest import NewEvent
from nasdb.schema.errors import InvalidEvent
from nasdb.schema.events import Tagged, TrainingRequested, validate_payload
from nasdb.schema.vocabulary import (
    IllegalJobTransition,
    JobState,
    job_state,
    job_transition,
    model_status,
)


def test_a_payload_that_does_not_fit_is_an_invalid_event_with_the_append_message() -> None:
    with pytest.raises(InvalidEvent) as err:
        Tagged(tag="")
    assert str(err.value) == "Tagged payload is invalid: tag: String should have at least 1 character"


def test_an_event_built_from_its_payload_is_what_the_store_would_store() -> None:
    event = NewEvent.of(TrainingRequested(priority=2, epochs=3), idempotency_key="requested-1")
    assert event.type == "TrainingRequested"
    assert event.data == validate_payload("TrainingRequested", {"priority": 2, "epochs": 3})
    assert event.idempotency_key == "requested-1"


def test_the_job_state_machine() -> None:
    state: JobState | None = None
    seen = []
    for event_type in ("ArchitectureProposed", "TrainingRequested", "JobClaimed", "LeaseRenewed",
                       "EpochCompleted", "JobClaimed", "TrainingFailed", "TrainingRequested",
                       "JobClaimed", "TrainingCompleted", "Tagged"):
        state = job_transition(state, event_type)
        seen.append(model_status(state))
        assert job_state(model_status(state)) == state
    assert seen == ["proposed", "queued", "training", "training", "training", "training", "failed",
                    "queued", "training", "done", "done"]
    assert job_transition("queued", "TrainingCancelled") == "cancelled"
    assert job_transition(None, "TrainingCancelled") == "cancelled"


@pytest.mark.parametrize(("state", "event_type"), [
    ("done", "JobClaimed"), ("cancelled", "JobClaimed"), (None, "JobClaimed"),
    ("queued", "TrainingCompleted"), ("failed", "TrainingCompleted"), ("done", "TrainingFailed"),
    ("done", "TrainingCancelled"), ("queued", "TrainingRequested"), ("claimed", "TrainingRequested"),
])
def test_an_event_the_machine_does_not_allow_is_an_illegal_transition(
        state: JobState | None, event_type: str) -> None:
    with pytest.raises(IllegalJobTransition) as err:
        job_transition(state, event_type)
    assert str(err.value).startswith(f"{event_type} cannot follow a {state or 'never requested'} job")

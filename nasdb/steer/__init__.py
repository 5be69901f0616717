"""nasdb.steer: the commands that steer the search, each of them appending events.

Proposing models, queue control (priority, cancel), pin, tags and notes, and studies: creating,
driving, pausing, refining and stopping them, and their hyperparameter importance. The model space
they draw on is `nasdb.search`; this package is where decisions about it become events.
"""

from __future__ import annotations

from ._actions import (
    Proposal,
    cancel,
    note,
    pin,
    propose,
    request_training,
    set_priority,
    tag,
)
from ._importance import study_importance
from ._study import (
    DEFAULT_BUDGET,
    DEFAULT_SETTINGS,
    DEFAULT_STRATEGY,
    PARAM_BOUNDS,
    best_under,
    create_study,
    load_view,
    pause_study,
    refine_study,
    resume_study,
    run_study,
    stop_study,
    study_status,
    take_step,
)

__all__ = [
    "DEFAULT_BUDGET",
    "DEFAULT_SETTINGS",
    "DEFAULT_STRATEGY",
    "PARAM_BOUNDS",
    "Proposal",
    "best_under",
    "cancel",
    "create_study",
    "load_view",
    "note",
    "pause_study",
    "pin",
    "propose",
    "refine_study",
    "request_training",
    "resume_study",
    "run_study",
    "set_priority",
    "stop_study",
    "study_importance",
    "study_status",
    "tag",
    "take_step",
]

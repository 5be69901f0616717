"""nasdb.search: the model space.

The layer grammar and `Architecture` (the contract JSON), `Hyperparameters`, shape inference with
exact parameter and FLOP counts, REMAP's Markov-chain sampler, the steering generators (ablations,
variations, handcrafted edits) and structural / prediction distances. Nothing here imports torch
except for reference classifiers, whose counts are measured on the module `nasdb.trainers.build`
builds (imported lazily).
"""

from __future__ import annotations

from ._actions import (
    DatasetInfo,
    Proposal,
    cancel,
    get_dataset,
    get_model,
    note,
    pin,
    propose,
    request_training,
    set_priority,
    tag,
)
from ._architecture import REFERENCE_NAMES, Architecture
from ._changes import (
    CHANGE_KINDS,
    Change,
    apply_changes,
    diff,
    handcraft,
    parse_change,
    parse_layer,
    replay,
)
from ._distance import NON_ASSIGNMENT_PENALTY, layer_cost, prediction_distance, structural_distance
from ._hyperparameters import OPTIMIZERS, SCHEDULES, Hyperparameters, HyperparameterSpace
from ._layers import (
    ACTIVATIONS,
    LAYER_TYPES,
    PADDINGS,
    Activation,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool,
    Layer,
    MaxPool2D,
    layer_from_dict,
)
from ._sampler import sample, sample_architecture
from ._shapes import LayerInfo, count_flops, count_params, infer_shapes
from ._space import REMAP_TABLE, REMAP_TABLE_AFTER_DENSE, SOFTMAX, START, SearchSpace
from ._steering import STEERING_MAX_PARAMS, ablations, variations

# --- studies and search strategies (issue 5) ---
from ._study import (
    create_study,
    get_study,
    load_view,
    pause_study,
    refine_study,
    resume_study,
    run_study,
    stop_study,
    study_status,
)

__all__ = [
    "ACTIVATIONS",
    "CHANGE_KINDS",
    "LAYER_TYPES",
    "NON_ASSIGNMENT_PENALTY",
    "OPTIMIZERS",
    "PADDINGS",
    "REFERENCE_NAMES",
    "REMAP_TABLE",
    "REMAP_TABLE_AFTER_DENSE",
    "SCHEDULES",
    "SOFTMAX",
    "START",
    "STEERING_MAX_PARAMS",
    "Activation",
    "Architecture",
    "AvgPool2D",
    "BatchNorm",
    "Change",
    "Conv2D",
    "DatasetInfo",
    "Dense",
    "Dropout",
    "Flatten",
    "GlobalAvgPool",
    "HyperparameterSpace",
    "Hyperparameters",
    "Layer",
    "LayerInfo",
    "MaxPool2D",
    "Proposal",
    "SearchSpace",
    "ablations",
    "apply_changes",
    "cancel",
    "count_flops",
    "count_params",
    "diff",
    "get_dataset",
    "get_model",
    "handcraft",
    "infer_shapes",
    "layer_cost",
    "layer_from_dict",
    "note",
    "parse_change",
    "parse_layer",
    "pin",
    "prediction_distance",
    "propose",
    "replay",
    "request_training",
    "sample",
    "sample_architecture",
    "set_priority",
    "structural_distance",
    "tag",
    "variations",
]

__all__ += [  # studies and search strategies (issue 5)
    "create_study",
    "get_study",
    "load_view",
    "pause_study",
    "refine_study",
    "resume_study",
    "run_study",
    "stop_study",
    "study_status",
]

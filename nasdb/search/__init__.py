"""nasdb.search: the model space.

The layer grammar and `Architecture` (the contract JSON), `Hyperparameters`, shape inference with
exact parameter and FLOP counts, REMAP's Markov-chain sampler, the steering generators (ablations,
variations, handcrafted edits), the search strategies and structural / prediction distances. It
reads no database and appends nothing: the commands that do are in `nasdb.steer`. Nothing here
imports torch or another nasdb package but `nasdb.schema`: a reference classifier is known here by
name only; its module and measured counts are `nasdb.trainers`' (`nasdb.trainers.measure`).
"""

from __future__ import annotations

from ._architecture import REFERENCE_NAMES, Architecture
from ._bounds import check_bounds
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
from ._dataset import DatasetInfo
from ._distance import NON_ASSIGNMENT_PENALTY, layer_cost, prediction_distance, structural_distance
from ._hyperparameters import OPTIMIZERS, SCHEDULES, Hyperparameters, HyperparameterSpace
from ._layers import (
    ACTIVATIONS,
    BLOCK_TYPES,
    LAYER_TYPES,
    PADDINGS,
    Activation,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    ConvBlock,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool,
    Layer,
    MaxPool2D,
    Residual,
    SepConv,
    layer_from_dict,
)
from ._sampler import sample, sample_architecture
from ._shapes import LayerInfo, check_input_shape, count_flops, count_params, infer_shapes
from ._space import REMAP_TABLE, REMAP_TABLE_AFTER_DENSE, SOFTMAX, START, SearchSpace
from ._steering import STEERING_MAX_PARAMS, ablations, variations

__all__ = [
    "ACTIVATIONS",
    "BLOCK_TYPES",
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
    "ConvBlock",
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
    "Residual",
    "SearchSpace",
    "SepConv",
    "ablations",
    "apply_changes",
    "check_bounds",
    "check_input_shape",
    "count_flops",
    "count_params",
    "diff",
    "handcraft",
    "infer_shapes",
    "layer_cost",
    "layer_from_dict",
    "parse_change",
    "parse_layer",
    "prediction_distance",
    "replay",
    "sample",
    "sample_architecture",
    "structural_distance",
    "variations",
]


"""nasdb.recommend: architecture encoder, dataset similarity, accuracy predictor, recommendations.

Pure functions and classes over plain Python / numpy inputs (layer-dict lists, image arrays,
feature rows); reading the database and appending RecommenderTrained events happen in the callers.
"""

from __future__ import annotations

from ._embedding import embed_2d, place_new
from ._encoder import ENCODER_FORMAT, ArchitectureEncoder
from ._predictor import (
    MIN_TRAINED_MODELS,
    PREDICTOR_FORMAT,
    AccuracyPredictor,
    PredictorRow,
    RegressorScore,
)
from ._recommend import (
    Candidate,
    GuidedChoice,
    Neighbour,
    Recommendation,
    guided_score,
    guided_selection,
    recommend,
)
from ._similarity import SIMILARITY_FORMAT, DatasetSimilarity, image_features, prepare_images
from ._tokens import UNK, Vocabulary, layer_token, tokenize

__all__ = [
    "ENCODER_FORMAT",
    "MIN_TRAINED_MODELS",
    "PREDICTOR_FORMAT",
    "SIMILARITY_FORMAT",
    "UNK",
    "AccuracyPredictor",
    "ArchitectureEncoder",
    "Candidate",
    "DatasetSimilarity",
    "GuidedChoice",
    "Neighbour",
    "PredictorRow",
    "Recommendation",
    "RegressorScore",
    "Vocabulary",
    "embed_2d",
    "guided_score",
    "guided_selection",
    "image_features",
    "layer_token",
    "place_new",
    "prepare_images",
    "recommend",
    "tokenize",
]

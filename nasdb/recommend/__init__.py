"""nasdb.recommend: architecture encoder, dataset similarity, accuracy predictor, recommendations.

The core (tokens, encoder, similarity, predictor, ranking, embedding) is pure functions and classes
over plain Python / numpy inputs (layer-dict lists, image arrays, feature rows). The database side
lives in three small modules: `_service` fits the recommenders from what is stored and records them
(artifact + RecommenderTrained), `_advice` answers recommendation and prediction requests, and
`_guided` is predictor-guided search (`propose_guided`, for the ``guided`` study strategy).
"""

from __future__ import annotations

from ._advice import predict_model, recommend_for
from ._embedding import embed_2d, place_new
from ._encoder import ENCODER_FORMAT, ArchitectureEncoder
from ._guided import predictor_ranker, propose_guided, rank_guided
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
from ._service import (
    Bundle,
    Fitted,
    Recommender,
    fit_all,
    fit_encoder,
    fit_predictor,
    fit_similarity,
    load_bundle,
    load_latest,
    load_recommender,
    usable_trained_models,
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
    "Bundle",
    "Candidate",
    "DatasetSimilarity",
    "Fitted",
    "GuidedChoice",
    "Neighbour",
    "PredictorRow",
    "Recommendation",
    "Recommender",
    "RegressorScore",
    "Vocabulary",
    "embed_2d",
    "fit_all",
    "fit_encoder",
    "fit_predictor",
    "fit_similarity",
    "guided_score",
    "guided_selection",
    "image_features",
    "layer_token",
    "load_bundle",
    "load_latest",
    "load_recommender",
    "place_new",
    "predict_model",
    "predictor_ranker",
    "prepare_images",
    "propose_guided",
    "rank_guided",
    "recommend",
    "recommend_for",
    "tokenize",
    "usable_trained_models",
]

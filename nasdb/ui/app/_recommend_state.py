"""State of the Recommend view (AutoCl's recommendation view): which dataset, class focus and size
the person asked about, the ranked models `nasdb.recommend` gives for it, fitting the recommenders,
and queuing a recommended architecture for training. No widgets.

Reads go through `nasdb.recommend` (`recommend_for`, `load_bundle`, `embed_2d`) and the public views
(`models`, `datasets`, `events`); writes only append events: `RecommenderTrained` by fitting
(`nasdb.recommend.fit_all`), `TrainingRequested` / `ArchitectureProposed` through `nasdb.search`, and
`UiAction` on the session stream. Every `NasdbError` becomes `message` (prefixed "⚠"), never a
traceback.

Threading: like `AppState`, not thread-safe, except that `run_fit` may run on a worker thread
while the session goes on (it reads and appends through the database and sets only `progress`).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import param

from nasdb import read, steer
from nasdb import recommend as nasdb_recommend
from nasdb.recommend import MIN_TRAINED_MODELS, Fitted
from nasdb.schema.errors import InvalidRequest, NasdbError, NotFound
from nasdb.search import Architecture, Hyperparameters
from nasdb.steer import Proposal

from ._state import AppState

#: The columns of `RecommendState.recommendations`, in order (``source_similarity`` only when
#: the recommendations come from another dataset).
COLUMNS = (
    "rank", "model_id", "glyph", "status", "source", "accuracy", "lower", "upper", "score",
    "score_basis", "params", "optimizer", "lr", "batch_size", "epochs", "trained_on", "why",
)

_SI = {"": 1, "k": 1_000, "m": 1_000_000, "g": 1_000_000_000}


def parse_count(text: str) -> int | None:
    """``"100k"`` -> 100000 (k, M, G suffixes; empty -> None). `InvalidRequest` otherwise."""
    text = text.strip()
    if not text:
        return None
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kKmMgG]?)", text)
    if match is None:
        raise InvalidRequest(f"{text!r} is not a parameter count; use a number with an optional "
                             "k, M or G suffix (100k, 1.5M)")
    number = round(float(match.group(1)) * _SI[match.group(2).lower()])
    if number < 1:
        raise InvalidRequest(f"the largest parameter count must be at least 1; got {text!r}")
    return number


def _ago(seconds: float) -> str:
    if seconds < 90:
        return f"{max(0, round(seconds))} s ago"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min ago"
    if seconds < 36 * 3600:
        return f"{round(seconds / 3600)} h ago"
    return f"{round(seconds / 86400)} days ago"


def _why(neighbours: Sequence[dict[str, Any]]) -> str:
    return ", ".join(f"{n['model_id']} ({n['accuracy']:.3f})" for n in neighbours)


def _empty() -> pd.DataFrame:
    return pd.DataFrame(columns=list(COLUMNS))


class RecommendState(param.Parameterized):
    """Ranked models for one dataset, the recommenders behind them, and queuing one to train."""

    dataset: Any = param.Selector(default=None, objects=[], allow_None=True,
                                  doc="the dataset to recommend models for")
    classes = param.ListSelector(default=[], objects=[],
                                 doc="rank by the mean accuracy on these classes (optional)")
    limit = param.Integer(default=10, bounds=(1, 100), doc="how many recommendations")
    max_params = param.Integer(default=None, allow_None=True, bounds=(1, None),
                               doc="leave out models with more parameters")
    untrained_only = param.Boolean(default=False,
                                   doc="only models not trained on the dataset (predicted)")
    recommendations = param.DataFrame(default=None, allow_None=True,
                                      doc="the ranked models (see COLUMNS)")
    mode = param.String(default="", doc="'trained', 'transfer' or '' (nothing to show)")
    source_dataset = param.String(default="", doc="the dataset whose models are ranked")
    similarity = param.Dict(default={}, doc="target's similarity share per dataset (transfer)")
    recommenders = param.Dict(default={}, doc="ids of the encoder, similarity and predictor used")
    selected = param.String(default=None, allow_None=True, doc="the recommendation in focus")
    message = param.String(default="", doc="the last outcome or error for the person")
    fitted = param.Boolean(default=False, doc="whether a predictor has been fitted")
    stale = param.Boolean(default=False, doc="whether models were trained since the last fit")
    fit_status = param.String(default="", doc="one line on the fitted recommenders")
    fitting = param.Boolean(default=False)
    progress = param.String(default="", doc="the fit's latest progress line")
    corpus = param.Integer(default=2000, bounds=(1, None),
                           doc="fit: sampled architectures for the encoder")
    encoder_epochs = param.Integer(default=8, bounds=(0, None), doc="fit: encoder epochs")
    sample_size = param.Integer(default=256, bounds=(2, None),
                                doc="fit: images per dataset for the similarity ranker")

    def __init__(self, app: AppState, **params: Any) -> None:
        super().__init__(**params)
        self.app = app
        self.result: dict[str, Any] = {}
        self._active = False
        self._hold = False
        self._signature: tuple[Any, ...] | None = None
        self._embedding: tuple[tuple[Any, ...], pd.DataFrame] | None = None
        self._similarity: dict[tuple[str, str], dict[str, float]] = {}
        self.recommendations = _empty()
        self._load_datasets()
        app.param.watch(self._app_changed, ["revision"])

    # --- what is stored --------------------------------------------------------------------

    def _load_datasets(self) -> None:
        done = read.done_models_by_dataset(self.app.db)
        names = list(done)
        if names == list(self.param.dataset.objects):
            return
        self.param.dataset.objects = names
        if self.dataset not in names:
            busiest = max(done, key=lambda d: done[d]) if done else None
            self.dataset = busiest  # also sets the class options (the watcher below)

    def dataset_classes(self) -> list[str]:
        if not self.dataset:
            return []
        try:
            return list(read.get_dataset(self.app.db, self.dataset).classes)
        except NotFound:
            return []

    def trained_count(self) -> int:
        """Trained models with a recorded architecture, over all datasets (what fitting uses)."""
        return len(nasdb_recommend.usable_trained_models(self.app.db))

    def _dataset_counts(self) -> dict[str, int]:
        return read.models_by_status(self.app.db, self.dataset) if self.dataset else {}

    # --- the recommenders ------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Which predictor is fitted, on how many models, and whether it is stale (models were
        trained or datasets registered since). Sets `fitted`, `stale` and `fit_status`."""
        trained = self.trained_count()
        latest = read.latest_recommender(self.app.db, "predictor")
        out: dict[str, Any] = {"fitted": latest is not None, "trained_now": trained,
                               "stale": False, "reasons": []}
        if latest is None:
            self.fitted, self.stale = False, False
            self.fit_status = (f"No recommenders are fitted yet ({trained} trained model"
                               f"{'' if trained == 1 else 's'}; fitting needs "
                               f"{MIN_TRAINED_MODELS}).")
            return out
        data, recorded_at = latest.data, latest.recorded_at
        metrics = data.get("metrics") or {}
        rows = int(data.get("training_rows") or 0)
        reasons = []
        if trained > rows:
            reasons.append(f"{trained - rows} more model{'s' if trained - rows != 1 else ''} "
                           "trained since")
        sim = read.recorded_recommender(self.app.db, str(metrics.get("similarity")))
        known = set((sim.data.get("metrics") or {}).get("datasets") or []) if sim else set()
        new = [d.id for d in read.list_datasets(self.app.db) if d.id not in known]
        if new:
            reasons.append(f"dataset{'s' if len(new) > 1 else ''} {', '.join(new)} registered "
                           "since")
        best = (metrics.get("scores") or [{}])[0]
        kendall = best.get("kendall")
        quality = f"best regressor {metrics.get('best')}" + (
            f", Kendall {kendall:.2f}" if isinstance(kendall, int | float) else "")
        age = time.time() - recorded_at.timestamp() if recorded_at is not None else 0.0
        text = (f"Predictor {data['recommender_id']} fitted on {rows} trained models "
                f"{_ago(age)} ({quality}).")
        if reasons:
            text += " Stale: " + "; ".join(reasons) + " — fit again to use them."
        self.fitted, self.stale, self.fit_status = True, bool(reasons), text
        out.update(stale=bool(reasons), reasons=reasons, recommender_id=data["recommender_id"],
                   training_rows=rows)
        return out

    def check_fit(self) -> bool:
        """Whether fitting can start now; when not, `message` says why (too few models)."""
        if self.fitting:
            self.message = "⚠ the recommenders are being fitted already; wait for that fit"
            return False
        trained = self.trained_count()
        if trained < MIN_TRAINED_MODELS:
            self.message = (
                f"⚠ fitting the recommenders needs at least {MIN_TRAINED_MODELS} trained models "
                f"with a recorded architecture; the database has {trained}. Train "
                f"{MIN_TRAINED_MODELS - trained} more first (Generate or a study here, or "
                "nasdb sample then nasdb worker)."
            )
            return False
        return True

    def run_fit(self) -> list[Fitted]:
        """Fit encoder, similarity and predictor (`nasdb.recommend.fit_all`); slow (seconds to
        minutes). Safe on a worker thread: it touches only `progress`. Raises `NasdbError`."""

        def progress(line: str) -> None:
            self.progress = f"{time.strftime('%H:%M:%S')} {line}"

        return nasdb_recommend.fit_all(
            self.app.db, n_corpus=self.corpus, encoder_epochs=self.encoder_epochs,
            sample_size=self.sample_size, progress=progress)

    def finish_fit(self, outcome: list[Fitted] | NasdbError) -> bool:
        """Report a fit's outcome (the list `run_fit` returned, or the error it raised)."""
        self.fitting = False
        self.progress = ""
        if isinstance(outcome, NasdbError):
            self.message = f"⚠ {outcome}"
            self.status()
            return False
        ids = {f.kind: f.recommender_id for f in outcome}
        predictor = next((f for f in outcome if f.kind == "predictor"), None)
        rows = predictor.training_rows if predictor else 0
        self.app.record("recommend_fit", recommenders=ids)
        self.app.refresh()
        if self._active:
            self._recompute()
        self.status()
        self.message = (f"fitted {', '.join(f'{k} {v}' for k, v in ids.items())} "
                        f"on {rows} trained models")
        return True

    def fit(self) -> bool:
        """Check, fit and report in one call (`check_fit`, `run_fit`, `finish_fit`)."""
        if not self.check_fit():
            return False
        self.fitting = True
        self.message = "fitting the recommenders…"
        try:
            outcome: list[Fitted] | NasdbError = self.run_fit()
        except NasdbError as e:
            outcome = e
        return self.finish_fit(outcome)

    # --- recommendations -------------------------------------------------------------------

    @param.depends("dataset", watch=True)
    def _dataset_changed(self) -> None:
        classes = self.dataset_classes()
        self._hold = True  # one recompute for the dataset and its class options together
        try:
            self.param.classes.objects = classes
            self.classes = [c for c in self.classes if c in classes]
        finally:
            self._hold = False
        self._changed()

    @param.depends("classes", "limit", "max_params", "untrained_only", watch=True)
    def _changed(self) -> None:
        if self._active and not self._hold:
            self._recompute()

    def _app_changed(self, *_: Any) -> None:
        self._load_datasets()
        if self._active and self._current_signature() != self._signature:
            self._recompute()

    def _current_signature(self) -> tuple[Any, ...]:
        latest = read.latest_recommender(self.app.db, "predictor")
        counts = self._dataset_counts()
        return (self.dataset, latest.data["recommender_id"] if latest else None,
                tuple(sorted(counts.items())))

    def set_max_params(self, text: str) -> bool:
        """Set `max_params` from text like ``100k``; a bad value leaves it and sets `message`."""
        try:
            value = parse_count(text)
        except InvalidRequest as e:
            self.message = f"⚠ {e}"
            return False
        self.max_params = value
        return True

    def recommend(self) -> pd.DataFrame:
        """The ranked recommendations for the chosen dataset (also kept in `recommendations`).

        Marks the state active: from now on it recomputes when its parameters change, the
        predictor is refitted, or the dataset's models change status. An error (nothing fitted,
        an unknown class, ...) gives an empty frame and a `message`.
        """
        self._active = True
        return self._recompute()

    def _recompute(self) -> pd.DataFrame:
        self._signature = self._current_signature()
        status = self.status()
        frame = _empty()
        mode, source, similarity, result = "", "", {}, {}
        message = ""
        try:
            if not self.dataset:
                raise NotFound("no dataset is registered yet; register one first "
                               "(nasdb dataset add digits)")
            if not status["fitted"]:
                raise NotFound(self._not_fitted(status["trained_now"]))
            counts = self._dataset_counts()
            if self.classes and not counts.get("done"):
                raise InvalidRequest(
                    f"nothing has been trained on {self.dataset!r} yet, so there are no "
                    "class-level metrics to rank by; clear the class focus")
            result = nasdb_recommend.recommend_for(
                self.app.db, self.dataset, max_params=self.max_params, classes=list(self.classes),
                limit=None)
            mode, source = result["mode"], result["source_dataset"]
            if mode == "transfer":
                similarity = self._similarity_of(self.dataset, result)
            frame = self._frame(result, similarity)
            if frame.empty:
                message = self._nothing_to_show(result)
        except NasdbError as e:
            message = f"⚠ {e}"
        with param.parameterized.batch_call_watchers(self):
            self.result = result
            self.mode, self.source_dataset, self.similarity = mode, source, similarity
            self.recommenders = dict(result.get("recommenders") or {})
            self.recommendations = frame
            if self.selected not in set(frame["model_id"]):
                self.selected = None
            self.message = message
        return frame

    def _not_fitted(self, trained: int) -> str:
        if trained < MIN_TRAINED_MODELS:
            return (f"no recommenders are fitted yet, and fitting them needs at least "
                    f"{MIN_TRAINED_MODELS} trained models with a recorded architecture; the "
                    f"database has {trained}. Train {MIN_TRAINED_MODELS - trained} more first "
                    "(Generate or a study here, or nasdb sample then nasdb worker).")
        return (f"no recommenders are fitted yet: press “Fit recommenders” (it fits the "
                f"encoder, the dataset similarity and the accuracy predictor on the {trained} "
                "trained models).")

    def _nothing_to_show(self, result: dict[str, Any]) -> str:
        if result["recommendations"] and self.untrained_only:
            return (f"every recommendation for {self.dataset!r} is already trained; untick "
                    "“untrained only” to see them")
        if self.max_params is not None:
            return f"no model for {self.dataset!r} has at most {self.max_params:,} parameters"
        return f"no model to recommend for {self.dataset!r} yet"

    def _similarity_of(self, dataset: str, result: dict[str, Any]) -> dict[str, float]:
        """The dataset's similarity shares (as the fitted similarity recommender measures them),
        cached per similarity recommender."""
        key = (str(result["recommenders"].get("similarity")), dataset)
        if key not in self._similarity:
            bundle = nasdb_recommend.load_bundle(self.app.db)
            shares = bundle.similarity_of(dataset)
            self._similarity[key] = {k: float(v) for k, v in
                                     sorted(shares.items(), key=lambda kv: -kv[1])}
        return self._similarity[key]

    def _frame(self, result: dict[str, Any], similarity: dict[str, float]) -> pd.DataFrame:
        items = result["recommendations"]
        if self.untrained_only:
            items = [i for i in items if i["source"] == "predicted"]
        items = items[: self.limit]
        rows = []
        for item in items:
            hp = item["hyperparameters"]
            interval = item["interval"] or [None, None]
            rows.append({
                "rank": item["rank"], "model_id": item["model_id"], "glyph": item["glyph"],
                "status": item["status"], "source": item["source"],
                "accuracy": item["accuracy"], "lower": interval[0], "upper": interval[1],
                "score": item["score"], "score_basis": item["score_basis"],
                "params": int(item["params"]), "optimizer": hp.get("optimizer"),
                "lr": hp.get("lr"), "batch_size": hp.get("batch_size"),
                "epochs": hp.get("epochs"), "trained_on": item["trained_on"],
                "why": _why(item["why"]),
            })
        frame = pd.DataFrame(rows, columns=list(COLUMNS)) if rows else _empty()
        for col in ("accuracy", "lower", "upper", "score"):
            frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float).round(4)
        if result["mode"] == "transfer":
            frame["source_similarity"] = round(similarity.get(result["source_dataset"], 0.0), 4)
        return frame.reset_index(drop=True)

    def summary(self) -> str:
        """One line on where the recommendations come from."""
        if not self.mode:
            return ""
        n = len(self.recommendations) if self.recommendations is not None else 0
        focus = f", ranked by class {', '.join(self.classes)}" if self.classes else ""
        if self.mode == "trained":
            return (f"{n} recommendation{'s' if n != 1 else ''} for **{self.dataset}**{focus}: "
                    "measured test accuracy for trained models, predicted (with a 90% interval) "
                    "for untrained ones.")
        share = self.similarity.get(self.source_dataset)
        shares = ", ".join(f"{k} {v:.2f}" for k, v in self.similarity.items())
        return (f"Nothing is trained on **{self.dataset}** yet: {n} models of the most similar "
                f"dataset, **{self.source_dataset}**"
                + (f" (similarity {share:.2f}; all shares: {shares})" if share is not None
                   else "")
                + f", with accuracies predicted for {self.dataset}.")

    # --- acting on a recommendation ----------------------------------------------------------

    def select(self, model_id: str | None) -> None:
        """Focus a recommendation (and the model in the app, so the drawer shows it)."""
        self.selected = model_id
        if model_id:
            self.app.select(model_id, source="recommend")

    def queue(self, model_id: str | None = None) -> str | None:
        """Queue the recommended architecture ``model_id`` (default: `selected`) for training
        on the chosen dataset; returns the model id queued, or None (see `message`).

        A model of another dataset (a transfer recommendation) is proposed on this dataset as a
        new model (its parent the source model, the prediction recorded with it); an untrained
        model of this dataset gets TrainingRequested. A measured one is refused: it is trained.
        """
        model_id = model_id or self.selected
        try:
            if not model_id:
                raise InvalidRequest("select a recommendation first (click its row)")
            frame = self.recommendations if self.recommendations is not None else _empty()
            found = frame[frame["model_id"] == model_id]
            if found.empty:
                raise InvalidRequest(f"{model_id} is not among the recommendations shown for "
                                     f"{self.dataset!r}")
            row: dict[str, Any] = {str(k): v for k, v in found.iloc[0].items()}
            trained_on = row["trained_on"] if isinstance(row["trained_on"], str) else None
            if trained_on and trained_on != self.dataset:
                queued = self._propose_here(row)
                text = (f"queued {queued} on {self.dataset}: the architecture of {model_id} "
                        f"(trained on {row['trained_on']}), predicted accuracy "
                        f"{row['accuracy']:.3f}")
            elif row["source"] == "measured":
                raise InvalidRequest(
                    f"{model_id} is already trained on {self.dataset!r} (measured accuracy "
                    f"{row['accuracy']:.3f}); pick a predicted row, or generate variations of "
                    "it in the Generate tab")
            else:
                steer.request_training(self.app.store, model_id)
                queued = model_id
                text = f"queued {model_id} for training (predicted accuracy " \
                       f"{row['accuracy']:.3f}{self._interval(row)})"
        except NasdbError as e:
            self.message = f"⚠ {e}"
            return None
        self.app.record("recommend_queue", model=model_id, queued=queued, dataset=self.dataset)
        self.app.refresh()  # waits for the new events; recomputes through `_app_changed`
        self.message = text
        return queued

    @staticmethod
    def _interval(row: dict[str, Any]) -> str:
        low, high = row.get("lower"), row.get("upper")
        if low is None or high is None or (isinstance(low, float) and math.isnan(low)):
            return ""
        return f", 90% interval {low:.3f}–{high:.3f}"

    def _propose_here(self, row: dict[str, Any]) -> str:
        source = read.get_model(self.app.db, row["model_id"])
        dataset = read.get_dataset(self.app.db, self.dataset)
        item = next(i for i in self.result["recommendations"] if i["model_id"] == row["model_id"])
        low, high = (item["interval"] or [None, None])
        proposal = Proposal(
            Architecture.from_json(dict(source.architecture)),
            Hyperparameters.from_json(dict(source.hyperparameters)),
            "handcrafted",
            parent_id=row["model_id"],
            changes=(f"recommended from {row['model_id']} (trained on {row['trained_on']})",),
            predicted_acc=float(item["accuracy"]),
            extra={"recommended_from": row["model_id"], "source_dataset": row["trained_on"],
                   "predicted_lower": low, "predicted_upper": high,
                   "recommender_id": (self.recommenders or {}).get("predictor")},
        )
        [new_id] = steer.propose(self.app.store, dataset, [proposal],
                                  metadata=self.app.metadata)
        return str(new_id)

    # --- the map -----------------------------------------------------------------------------

    def embedding(self, max_points: int = 400) -> pd.DataFrame:
        """A 2-D MDS map (`nasdb.recommend.embed_2d` of encoder vectors) of the ranked dataset's
        trained models, at most ``max_points`` (the most accurate), plus every recommendation
        shown; ``recommended`` and ``rank`` mark the recommendations. Empty when nothing is
        fitted or shown. Cached until the models or the predictor change."""
        columns = ["model_id", "x", "y", "accuracy", "params", "recommended", "rank"]
        frame = self.recommendations
        if not self.fitted or frame is None or frame.empty or not self.source_dataset:
            return pd.DataFrame(columns=columns)
        shown = frame["model_id"].tolist()
        with self.app.db.connect() as conn:
            rows = conn.execute(
                "select id, architecture, test_acc, params from models where dataset_id = %s "
                "and status = 'done' and test_acc is not null order by test_acc desc, id "
                "limit %s", (self.source_dataset, max_points)).fetchall()
            have = {r[0] for r in rows}
            extra = [m for m in shown if m not in have]
            if extra:
                rows += conn.execute(
                    "select id, architecture, test_acc, params from models where id = any(%s)",
                    (extra,)).fetchall()
        key = (self.recommenders.get("encoder"), tuple(sorted(r[0] for r in rows)))
        if self._embedding is None or self._embedding[0] != key:
            bundle = nasdb_recommend.load_bundle(self.app.db)
            vectors = bundle.encoder.model.encode_many([dict(r[1]) for r in rows])
            xy = nasdb_recommend.embed_2d(np.asarray(vectors, dtype=np.float64), "mds")
            base = pd.DataFrame({
                "model_id": [r[0] for r in rows], "x": xy[:, 0], "y": xy[:, 1],
                "accuracy": [float(r[2]) if r[2] is not None else np.nan for r in rows],
                "params": [int(r[3]) for r in rows]})
            self._embedding = (key, base)
        out = self._embedding[1].copy()
        ranks = dict(zip(frame["model_id"], frame["rank"], strict=True))
        out["recommended"] = out["model_id"].isin(ranks)
        out["rank"] = out["model_id"].map(ranks).astype("Int64")
        return out[columns]

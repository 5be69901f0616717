"""Successive halving, Hyperband, ASHA and BOHB, all counting budget in training epochs.

Hyperband (Li et al.) with maximum budget ``R`` epochs and reduction factor ``eta`` (REMAP: R=9,
eta=3) runs brackets s = s_max..0, s_max = floor(log_eta R). Bracket s starts
n = ceil((s_max+1)/(s+1) * eta^s) configurations at r = R * eta^-s epochs; each rung keeps the best
1/eta by the primary objective and trains them with eta times the epochs, up to R. Rungs are
synchronous: a rung is promoted once every trial of the rung below has finished. Setting
``bracket`` runs that one bracket only (plain successive halving). When all brackets ran, the next
Hyperband iteration starts, until the budget is used.

A promotion is a new model (same architecture and hyperparameters, parent = the lower rung's
model). With ``resume`` (default) it starts from the parent's checkpoint
(TrainingRequested.resume_from) and trains only the extra epochs; without it trains from scratch.
Every trial records ``bracket``, ``rung``, ``iteration``, ``rung_epochs`` and ``config`` (the id of
the configuration's first model) in its proposal dict.

ASHA (Li et al. 2020) promotes asynchronously: whenever a slot is free, the highest rung with a
trial in the top 1/eta of its finished trials that was not promoted yet gives a promotion,
otherwise a new configuration starts at the bottom rung (``min_epochs``).

BOHB (Falkner et al.) is Hyperband whose new configurations come from TPE fitted on the largest
rung budget with at least ``min_points`` finished trials (random with probability
``random_fraction``, and while there is not enough evidence).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, ClassVar

from nasdb.schema.errors import InvalidRequest, NasdbError

from ._base import Strategy, StudyView, Suggestion, Trial, fresh, with_epochs


def _log_floor(x: float, base: int) -> int:
    n = 0
    while base ** (n + 1) <= x + 1e-9:
        n += 1
    return n


def bracket_plan(R: int, eta: int, s: int) -> list[tuple[int, int]]:
    """[(configs, epochs)] per rung of bracket ``s``."""
    s_max = _log_floor(R, eta)
    n = math.ceil((s_max + 1) / (s + 1) * eta**s)
    r = R / eta**s
    return [(max(1, math.floor(n / eta**i)), max(1, round(r * eta**i))) for i in range(s + 1)]


def config_of(trial: Trial) -> str:
    """The id of the configuration's first model (a promotion's lineage root)."""
    return str(trial.proposal.get("config") or trial.model_id)


def _promote(view: StudyView, parent: Trial, rung: int, epochs: int, info: dict[str, Any],
             resume: bool) -> Suggestion:
    before = int(parent.proposal.get("rung_epochs", parent.epochs_trained))
    hp = with_epochs(parent.hyperparameters, epochs)
    resume_from = None
    if resume and parent.checkpoint and epochs > before:
        hp = with_epochs(parent.hyperparameters, epochs - before)
        resume_from = parent.checkpoint
    change = (f"promoted from rung {rung - 1} ({before} epochs) to rung {rung} ({epochs} "
              f"epochs)" + (f", resumed from {parent.model_id}" if resume_from else ""))
    return Suggestion(parent.architecture, hp, "sampled", parent_id=parent.model_id,
                      changes=(change,),
                      info={**info, "config": config_of(parent)},
                      resume_from=resume_from)


class Hyperband(Strategy):
    name = "hyperband"
    defaults: ClassVar[dict[str, Any]] = {"R": 9, "eta": 3, "bracket": -1, "resume": True}

    @classmethod
    def check(cls, settings: dict[str, Any]) -> None:
        if settings["eta"] < 2:
            raise InvalidRequest(f"eta must be at least 2, got {settings['eta']}")
        if settings["R"] < 1:
            raise InvalidRequest(f"R must be at least 1 epoch, got {settings['R']}")
        s_max = _log_floor(settings["R"], settings["eta"])
        if settings["bracket"] > s_max:
            raise InvalidRequest(
                f"bracket must be in 0..{s_max} for R={settings['R']}, eta={settings['eta']}, "
                f"got {settings['bracket']}"
            )

    def brackets(self) -> list[int]:
        R, eta, b = int(self.settings["R"]), int(self.settings["eta"]), self.settings["bracket"]
        return [int(b)] if b >= 0 else list(range(_log_floor(R, eta), -1, -1))

    def new_configs(self, view: StudyView, n: int, info: dict[str, Any], epochs: int,
                    rng: Any) -> list[Suggestion]:
        return [replace(s, hyperparameters=with_epochs(s.hyperparameters, epochs))
                for s in (fresh(view, rng, info) for _ in range(n))]

    def ask(self, view: StudyView, slots: int) -> list[Suggestion]:
        rng = view.rng()
        R, eta = int(self.settings["R"]), int(self.settings["eta"])
        mine = [t for t in view.trials if t.proposal.get("strategy") == self.name]
        iteration = 0
        while True:
            for s in self.brackets():
                plan = bracket_plan(R, eta, s)
                ours = [t for t in mine if t.proposal.get("iteration") == iteration
                        and t.proposal.get("bracket") == s]
                for rung, (n, epochs) in enumerate(plan):
                    info = {"strategy": self.name, "iteration": iteration, "bracket": s,
                            "rung": rung, "rung_epochs": epochs}
                    here = [t for t in ours if t.proposal.get("rung") == rung]
                    if len(here) >= n:
                        continue
                    if rung == 0:
                        return self.new_configs(view, min(slots, n - len(here)), info, epochs,
                                                rng)
                    below = [t for t in ours if t.proposal.get("rung") == rung - 1]
                    if any(t.in_flight for t in below):
                        return []
                    taken = {config_of(t) for t in here}
                    candidates = [t for t in view.ranked([t for t in below if t.done])
                                  if config_of(t) not in taken]
                    if not candidates:
                        break  # the rung below failed: this bracket ends early
                    return [_promote(view, t, rung, epochs, info, bool(self.settings["resume"]))
                            for t in candidates[: min(slots, n - len(here))]]
                if any(t.in_flight for t in ours):
                    return []
            iteration += 1


def seeded_fresh(view: StudyView, rng: Any, info: dict[str, Any], epochs: int,
                 candidates: int) -> Suggestion:
    """A new configuration: with ``candidates`` > 1 and a ranking function (a fitted accuracy
    predictor, `StudyView.rank`), the best-ranked of that many random draws, its prediction in
    the proposal; otherwise (or when no predictor is fitted yet) one random draw."""
    pool = [fresh(view, rng, info, epochs=epochs) for _ in range(max(1, candidates))]
    if len(pool) == 1 or view.rank is None:
        return pool[0]
    try:
        ranking = view.rank(view.dataset, pool, 1 / len(pool))
    except NasdbError:  # no predictor fitted: plain random
        return pool[0]
    if not ranking.kept:
        return pool[0]
    top = ranking.kept[0]
    s = pool[top.index]
    return replace(s, info={**s.info, "predicted_acc": top.predicted,
                            "candidates": len(pool), "recommender_id": ranking.source})


class ASHA(Strategy):
    """ASHA; with ``candidates`` > 1 each new configuration is the predictor's pick among that
    many random draws when the driver has a fitted predictor (`seeded_fresh`).

    ``promote`` says which finished trials of a rung are its top 1/eta: ``primary``, the best by
    the primary objective (ASHA as published); ``fronts``, the best by non-dominated sorting over
    all the study's objectives (`StudyView.ranked_by_fronts`), so that with ``val_acc, params``
    small models climb the rungs beside large ones.

    ``split_params`` N (0: off), when below the space's ``max_params``, runs two competitions side
    by side: models of at most N parameters and the rest (`strata`). Each rung promotes the top
    1/eta of each competition on its own, and a new configuration is drawn for the competition
    with fewer bottom-rung trials, under N parameters when it is the small one (its proposal
    records ``params_max``; a space with no model that small draws freely instead). So a study
    asked for good models under 10k and under 100k trains about as many of each, instead of the
    few small ones the space's chain draws by chance."""

    name = "asha"
    defaults: ClassVar[dict[str, Any]] = {"R": 9, "eta": 3, "min_epochs": 1, "resume": True,
                                          "candidates": 1, "promote": "primary",
                                          "split_params": 0}
    PROMOTE = ("primary", "fronts")

    @classmethod
    def check(cls, settings: dict[str, Any]) -> None:
        if settings["eta"] < 2:
            raise InvalidRequest(f"eta must be at least 2, got {settings['eta']}")
        if not 1 <= settings["min_epochs"] <= settings["R"]:
            raise InvalidRequest(
                f"min_epochs must be in 1..R ({settings['R']}), got {settings['min_epochs']}"
            )
        if settings["candidates"] < 1:
            raise InvalidRequest(f"candidates must be at least 1, got {settings['candidates']}")
        if settings["split_params"] < 0:
            raise InvalidRequest(f"split_params must be 0 (off) or a parameter count, got "
                                 f"{settings['split_params']}")
        if settings["promote"] not in cls.PROMOTE:
            raise InvalidRequest(f"promote must be one of {', '.join(cls.PROMOTE)}, got "
                                 f"{settings['promote']!r}")

    def rungs(self) -> list[int]:
        R, eta, r = int(self.settings["R"]), int(self.settings["eta"]), \
            int(self.settings["min_epochs"])
        top = _log_floor(R / r, eta)
        return [r * eta**k for k in range(top + 1)]

    def strata(self, view: StudyView) -> list[int]:
        """The parameter bounds of the competitions, smallest first: ``[split_params, max_params]``
        or, when the split is off or not below the space's cap, ``[max_params]``."""
        cap = view.space.architecture.max_params
        split = int(self.settings["split_params"])
        return [split, cap] if 0 < split < cap else [cap]

    def ask(self, view: StudyView, slots: int) -> list[Suggestion]:
        rng = view.rng()
        eta = int(self.settings["eta"])
        rungs = self.rungs()
        bounds = self.strata(view)

        def stratum(params: int) -> int:
            return next((i for i, b in enumerate(bounds) if params <= b), len(bounds) - 1)

        mine = [t for t in view.trials if t.proposal.get("strategy") == self.name]
        promoted: dict[int, set[str]] = {
            k: {config_of(t) for t in mine if t.proposal.get("rung") == k}
            for k in range(len(rungs))
        }
        drawn = [sum(1 for t in mine if t.proposal.get("rung") == 0 and stratum(t.params) == i)
                 for i in range(len(bounds))]
        order = view.ranked if self.settings["promote"] == "primary" else view.ranked_by_fronts
        out: list[Suggestion] = []
        while len(out) < slots:
            pick = self._promotion(mine, promoted, order, eta, stratum, len(bounds))
            if pick is not None:
                k, parent = pick
                info = {"strategy": self.name, "rung": k, "rung_epochs": rungs[k]}
                out.append(_promote(view, parent, k, rungs[k], info,
                                    bool(self.settings["resume"])))
                promoted[k].add(config_of(parent))
                continue
            # the competition with fewer bottom-rung trials; on a tie the larger one
            i = min(range(len(bounds) - 1, -1, -1), key=lambda n: drawn[n])
            info = {"strategy": self.name, "rung": 0, "rung_epochs": rungs[0]}
            candidates = int(self.settings["candidates"])
            drawn[i] += 1
            if i < len(bounds) - 1:
                try:
                    out.append(seeded_fresh(replace(view, space=view.space.capped(bounds[i])),
                                            rng, {**info, "params_max": bounds[i]}, rungs[0],
                                            candidates))
                    continue
                except InvalidRequest:  # no model of the space fits under the split: draw freely
                    pass
            out.append(seeded_fresh(view, rng, info, rungs[0], candidates))
        return out

    @staticmethod
    def _promotion(mine: list[Trial], promoted: dict[int, set[str]],
                   order: Callable[[Sequence[Trial]], list[Trial]], eta: int,
                   stratum: Callable[[int], int], strata: int) -> tuple[int, Trial] | None:
        """The highest rung ``k`` + 1 with a trial in the top 1/eta of its competition on rung
        ``k`` that was not promoted yet, and that trial; None when there is none."""
        for k in range(len(promoted) - 2, -1, -1):
            for i in range(strata):
                done = order([t for t in mine if t.proposal.get("rung") == k and t.done
                              and stratum(t.params) == i])
                top = done[: len(done) // eta]
                pick = next((t for t in top if config_of(t) not in promoted[k + 1]), None)
                if pick is not None:
                    return k + 1, pick
        return None


class BOHB(Hyperband):
    name = "bohb"
    defaults: ClassVar[dict[str, Any]] = {**Hyperband.defaults, "min_points": 6, "random_fraction": 1 / 3}

    def new_configs(self, view: StudyView, n: int, info: dict[str, Any], epochs: int,
                    rng: Any) -> list[Suggestion]:
        from ._optuna import tpe_configs

        mine = [t for t in view.trials if t.proposal.get("strategy") == self.name]
        evidence: list[Trial] = []
        for budget in sorted({int(t.proposal.get("rung_epochs", 0)) for t in mine},
                             reverse=True):
            at = [t for t in mine if t.proposal.get("rung_epochs") == budget and t.finished]
            if sum(1 for t in at if t.done) >= int(self.settings["min_points"]):
                evidence = at
                break
        return tpe_configs(view, evidence, n, info, epochs, rng,
                           int(self.settings["min_points"]),
                           float(self.settings["random_fraction"]))

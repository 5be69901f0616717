"""Population-based training (Jaderberg et al.), synchronous generations.

``population`` members train ``interval`` epochs per generation. When a generation has finished,
each member in the bottom ``quantile`` (by the primary objective; failed members count as worst)
*exploits* a member drawn from the top ``quantile``: it continues from that member's checkpoint
(TrainingRequested.resume_from, stored by the worker in TrainingCompleted.checkpoint) with its
architecture and hyperparameters, then *explores*: every continuous hyperparameter (lr, and
weight_decay when it is not 0) is resampled from the space with probability
``resample_probability``, else multiplied by 0.8 or 1.2 — multiplicatively, so a learning rate of
1e-5 moves as far in relative terms as one of 1e-1 (HyperTendril's users met a PBT whose
perturbation ignored the scale). Other members continue from their own checkpoint. Each
generation's model has the model it continued from as parent, so the lineage can be drawn.
``generations`` 0 means: until the budget is used.
"""

from __future__ import annotations

import math
import random
from dataclasses import replace
from typing import Any, ClassVar

from nasdb.schema.errors import InvalidRequest

from .._hyperparameters import Hyperparameters
from ._base import Strategy, StudyView, Suggestion, Trial, fresh, with_epochs

PERTURB_FACTORS = (0.8, 1.2)
CONTINUOUS = ("lr", "weight_decay")


def perturb(value: float, rng: random.Random, factors: tuple[float, ...] = PERTURB_FACTORS
            ) -> float:
    """``value`` times a factor drawn uniformly from ``factors``: the relative step is the same at
    every scale."""
    return value * rng.choice(factors)


def explore(hp: Hyperparameters, view: StudyView, rng: random.Random,
            resample_probability: float) -> tuple[Hyperparameters, list[str]]:
    """Perturb or resample each continuous hyperparameter; returns the result and the changes."""
    changes: list[str] = []
    values: dict[str, Any] = {}
    dropped = set(view.space.dropped)
    space = view.space.hyperparameters
    for name in CONTINUOUS:
        old = float(getattr(hp, name))
        if name in dropped or (name == "weight_decay" and old == 0.0):
            continue
        if rng.random() < resample_probability:
            if name == "lr":
                low, high = space.lr_range
                new = math.exp(rng.uniform(math.log(low), math.log(high)))
            else:
                new = float(rng.choice(space.weight_decays))
            how = "resampled"
        else:
            new = perturb(old, rng)
            how = f"x{new / old:.1f}"
        values[name] = new
        changes.append(f"{name}: {old:.4g} -> {new:.4g} ({how})")
    return replace(hp, **values), changes


class PBT(Strategy):
    name = "pbt"
    defaults: ClassVar[dict[str, Any]] = {"population": 4, "interval": 1, "generations": 0,
                                "quantile": 0.25, "resample_probability": 0.25}

    @classmethod
    def check(cls, settings: dict[str, Any]) -> None:
        if settings["population"] < 2:
            raise InvalidRequest(f"population must be at least 2, got {settings['population']}")
        if settings["interval"] < 1:
            raise InvalidRequest(f"interval must be at least 1 epoch, got {settings['interval']}")
        if not 0 < settings["quantile"] <= 0.5:
            raise InvalidRequest(f"quantile must be in (0, 0.5], got {settings['quantile']}")
        if not 0 <= settings["resample_probability"] <= 1:
            raise InvalidRequest(
                f"resample_probability must be in [0, 1], got {settings['resample_probability']}"
            )

    def _members(self, view: StudyView) -> dict[int, dict[int, Trial]]:
        out: dict[int, dict[int, Trial]] = {}
        for t in view.trials:
            if t.proposal.get("strategy") == self.name:
                out.setdefault(int(t.proposal["generation"]), {})[int(t.proposal["member"])] = t
        return out

    def exhausted(self, view: StudyView) -> bool:
        limit = int(self.settings["generations"])
        members = self._members(view)
        if not limit or not members:
            return False
        last = max(members)
        return last >= limit - 1 and len(members[last]) >= int(self.settings["population"])

    def ask(self, view: StudyView, slots: int) -> list[Suggestion]:
        rng = view.rng()
        size, interval = int(self.settings["population"]), int(self.settings["interval"])
        members = self._members(view)
        generation = max(members) if members else 0
        current = members.get(generation, {})
        if len(current) >= size:
            if any(t.in_flight for t in current.values()) or self.exhausted(view):
                return []
            generation, previous, current = generation + 1, current, {}
        else:
            previous = members.get(generation - 1, {})
        out: list[Suggestion] = []
        for j in range(size):
            if len(out) >= slots:
                break
            if j in current:
                continue
            info = {"strategy": self.name, "generation": generation, "member": j}
            if generation == 0:
                out.append(fresh(view, rng, info, epochs=interval))
                continue
            out.append(self._next(view, rng, previous, j, info, interval))
        return out

    def _next(self, view: StudyView, rng: random.Random, previous: dict[int, Trial], j: int,
              info: dict[str, Any], interval: int) -> Suggestion:
        ranked = view.ranked([t for t in previous.values() if t.done])
        failed = [t for t in previous.values() if not t.done]
        order = ranked + failed
        cut = max(1, math.floor(len(previous) * float(self.settings["quantile"])))
        own = previous[j]
        if own in order[-cut:] and ranked and own not in ranked[:cut]:
            donor = rng.choice(ranked[:cut])
            hp, changes = explore(donor.hyperparameters, view, rng,
                                  float(self.settings["resample_probability"]))
            return Suggestion(
                donor.architecture, with_epochs(hp, interval), "mutation",
                parent_id=donor.model_id,
                changes=(f"member {j} exploited member {donor.proposal.get('member')} "
                         f"({donor.model_id})", *changes),
                info={**info, "exploited": donor.model_id, "replaced": own.model_id},
                resume_from=donor.checkpoint,
            )
        return Suggestion(own.architecture, with_epochs(own.hyperparameters, interval),
                          "sampled", parent_id=own.model_id,
                          changes=(f"member {j} continued",), info=info,
                          resume_from=own.checkpoint if own.done else None)

"""Which dataset a query ranks: rankings never mix datasets.

Accuracies of different datasets do not compare (0.9 on digits is poor, on CIFAR-10 excellent), so
a ranking - ``pareto`` or ``top`` - reads one dataset. A query names its dataset with
``dataset=NAME`` or ``study=NAME`` (a study searches one dataset) among its top-level filters.
When it names none: a caller's default dataset applies (`scoped`; the web app passes the selected
one), else with one dataset registered that one is meant, else `DatasetNotChosen` lists them.
"""

from __future__ import annotations

import dataclasses

from nasdb.query._ast import Comparison, FieldRef, Membership, Query, String
from nasdb.schema.errors import DatasetNotChosen

__all__ = ["check_one_dataset", "names_dataset", "ranking_verb", "scoped"]

_NAMING = {"dataset", "study"}


def names_dataset(query: Query) -> bool:
    """Whether a top-level filter picks one dataset (``dataset=X``, ``study=X``, ``in (X)``)."""
    for f in query.filters:
        if isinstance(f, Comparison) and f.op == "=" and f.field.aggregate is None \
                and f.field.name.lower() in _NAMING and len(f.values) == 1:
            return True
        if isinstance(f, Membership) and not f.negated and len(f.values) == 1 \
                and f.field.name.lower() in _NAMING:
            return True
    return False


def ranking_verb(query: Query) -> str | None:
    """``pareto`` or ``top`` when the query ranks models, else None."""
    if query.pareto is not None:
        return "pareto"
    if query.top is not None:
        return "top"
    return None


def scoped(query: Query, dataset: str | None) -> Query:
    """``query`` limited to ``dataset`` when it names no dataset itself (unchanged otherwise)."""
    if dataset is None or names_dataset(query):
        return query
    where = Comparison(FieldRef("dataset"), "=", (String(dataset),))
    return dataclasses.replace(query, filters=(where, *query.filters))


def check_one_dataset(query: Query, datasets: tuple[str, ...] | None) -> None:
    """Raise `DatasetNotChosen` for a ranking that names no dataset while several exist."""
    verb = ranking_verb(query)
    if verb is None or datasets is None or len(datasets) < 2 or names_dataset(query):
        return
    raise DatasetNotChosen(verb, datasets)

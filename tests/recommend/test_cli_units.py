"""Parsing helpers of ``nasdb recommend`` that need no database."""

from __future__ import annotations

import click
import pytest

from nasdb.ui._cli_recommend import Count


@pytest.mark.parametrize(("text", "value"), [("100k", 100_000), ("1M", 1_000_000),
                                             ("1.5m", 1_500_000), ("2G", 2_000_000_000),
                                             ("12000", 12_000), (" 3K ", 3_000)])
def test_counts_accept_si_suffixes(text: str, value: int) -> None:
    assert Count().convert(text, None, None) == value


@pytest.mark.parametrize("text", ["12x", "k", "-5k", "0", ""])
def test_bad_counts_are_refused(text: str) -> None:
    with pytest.raises(click.BadParameter):
        Count().convert(text, None, None)

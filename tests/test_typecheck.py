"""The type checker sees across nasdb's packages: a class imported from another package is that
class (not ``Any``), and a type error between two packages fails mypy, so it fails ``make test``.

mypy runs on one small probe module with the project's own configuration (pyproject.toml); the
nasdb modules it imports are analysed too (errors in them are `make test`'s own mypy run's
business), with an incremental cache under .mypy_cache so a second run takes seconds.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from mypy import api

REPO = Path(__file__).resolve().parents[1]

PROBE = textwrap.dedent(
    """\
    from nasdb.ingest import EventStore
    from nasdb.read import get_model
    from nasdb.schema import Database
    from nasdb.steer import propose

    store = EventStore(db=Database())
    reveal_type(store)
    reveal_type(get_model(store.db, "m1"))
    propose(store, "digits", [])
    """
)


_ARGS = [
    "--config-file", str(REPO / "pyproject.toml"),
    "--follow-imports", "silent",
    "--cache-dir", str(REPO / ".mypy_cache" / "probe"),
    "--no-error-summary", "--hide-error-context", "--no-pretty", "--show-error-codes",
]


@pytest.fixture(scope="module")
def mypy_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], int]:
    probe = tmp_path_factory.mktemp("typecheck") / "probe.py"
    probe.write_text(PROBE, encoding="utf-8")
    with pytest.MonkeyPatch.context() as env:  # this checkout's nasdb, whatever is installed
        env.setenv("MYPYPATH", str(REPO))
        stdout, stderr, status = api.run([*_ARGS, str(probe)])
    assert not stderr, stderr
    lines = [line.split(": ", 1)[1] for line in stdout.splitlines() if ": " in line]
    return lines, status



def test_a_class_from_another_package_is_the_real_class(mypy_report: tuple[list[str], int]) -> None:
    lines, _ = mypy_report
    assert 'note: Revealed type is "nasdb.ingest._store.EventStore"' in lines
    assert 'note: Revealed type is "nasdb.read._rows.ModelRow"' in lines


def test_a_type_error_between_two_packages_fails_the_type_check(
    mypy_report: tuple[list[str], int],
) -> None:
    lines, status = mypy_report
    assert status == 1
    assert [line for line in lines if line.startswith("error:")] == [
        'error: Argument 2 to "propose" has incompatible type "str"; expected "DatasetInfo"  '
        "[arg-type]"
    ]

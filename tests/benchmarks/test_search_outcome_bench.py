"""benchmarks/search_outcome.py with a budget of seconds on a few Fashion-MNIST images, against a
real server: every method runs, the tables have the promised shape, and the reference classifier
is never counted as a found model."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import psycopg

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "search_outcome.py"
METHODS = {"default": "nasdb default (ASHA, modern)", "remap": "(a) REMAP random",
           "nasdb-hyperband": "nasdb hyperband (modern)", "tpe": "(b) Optuna TPE direct",
           "cnn": "(c) cnn reference"}
CELL = r"(-|0\.\d{4} \(\d+k\)|1\.0000 \(\d+k\))"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=600, cwd=SCRIPT.parents[1])


def test_every_method_runs_and_the_reference_is_not_a_found_model(pg_admin_url: str) -> None:
    done = _run("--url", pg_admin_url, "--budget-seconds", "8", "--limit", "600",
                "--methods", ",".join(METHODS))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("search outcome on Fashion-MNIST (600 training images, official 10k "
                          "test split): 8 s wall budget per method")
    tables = out.split("\nbest test accuracy under ")[1:]
    assert [t.split(" ", 1)[0] for t in tables] == ["100k", "10k"]
    for table in tables:
        assert "| method | 2s | 4s | 6s | 8s | models | wall s |" in table
        rows = re.findall(rf"^\| (.+?) \| {CELL} \| {CELL} \| {CELL} \| {CELL} \| (-|\d+) \| "
                          r"(\d+) \|$", table, re.M)
        assert [r[0] for r in rows] == list(METHODS.values()), table
        models = {r[0]: r[5] for r in rows}
        assert models["(c) cnn reference"] == "-"  # its epochs are not found models
        assert all(n.isdigit() for name, n in models.items() if name != "(c) cnn reference")
    # the reference trains for the whole budget and says what it reached, apart from the tables
    assert re.search(r"^\(c\) cnn reference: 421,642 params, test acc 0\.\d{4} after \d+ epochs "
                     r"\(reference: not a found model\)$", out, re.M), out
    # Optuna's TPE trains 9 epochs of 600 images in well under 8 s: a found model with its accuracy
    tpe = re.search(r"^\| \(b\) Optuna TPE direct \| .* \| (0\.\d{4}) \(\d+k\) \| (\d+) \|", out,
                    re.M)
    assert tpe and int(tpe.group(2)) >= 1, out
    assert re.search(r"^load average before .* command: python benchmarks/search_outcome.py "
                     r"--url \S+ --budget-seconds 8 --limit 600 --methods \S+$", out, re.M)

    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        left = conn.execute("select datname from pg_database where datname like "
                            "'nasdb_outcome_%'").fetchall()
    assert left == []  # each study's throwaway database was dropped


def test_an_unknown_method_is_named_with_the_choices() -> None:
    done = _run("--methods", "default,nasdb-hyperbnd")
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert "unknown method 'nasdb-hyperbnd'" in last and "nasdb-{" in last and "hyperband" in last
    assert "Traceback" not in done.stderr

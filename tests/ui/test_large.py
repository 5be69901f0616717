"""100,000 models: the overview loads and renders (datashader) in headless Chromium.

The measurement is `benchmarks/ui.py` with nasdb alone (``--baselines none``): it builds the
models through the real store and projector (lean streams, `synthetic.lean_log`), serves them
with ``nasdb ui --port P`` in its own process, and times the first load after the server starts
and three more, each in a fresh browser context; it exits 10 when either is over its 3 s target.

The 3 s target is the benchmark's, run on a quiet machine and quoted in the README. This test runs
inside the suite, on shared machines and beside other suites (issue 18), where the same page
measured 3.70 s median (first 5.18 s) on CI against 1.5 s (first 1.9 s) on a quiet machine of the
same kind: a 3 s assertion here would depend on the neighbours' load. It asserts that the page
draws the rasterised models and that both loads stay under `REGRESSION_GUARD_S`, which the
regressions this page has had (17 s with a glyph per model, 7 s for a cold first load) cross on
any machine.
``NASDB_UI_LARGE`` sets the model count (``NASDB_UI_LARGE=0`` skips the test, for a quick run).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests._prerequisites import missing

from .conftest import CHROMIUM, SCREENSHOTS

N_MODELS = int(os.environ.get("NASDB_UI_LARGE", "100000") or 0)
#: Three times the benchmark's target: see the module docstring.
REGRESSION_GUARD_S = 9.0
BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "ui.py"

pytestmark = [
    pytest.mark.timeout(900),
    pytest.mark.skipif(N_MODELS <= 0, reason="NASDB_UI_LARGE=0 skips the large-page test"),
]


def test_overview_of_many_models_loads_and_renders_well_within_the_guard(pg_admin_url: str) -> None:
    if not Path(CHROMIUM).exists():
        missing(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    args = ["--url", pg_admin_url, "--models", str(N_MODELS), "--baselines", "none",
            "--loads", "3", "--screenshots", str(SCREENSHOTS / "large")]
    done = subprocess.run([sys.executable, str(BENCHMARK), *args], capture_output=True,
                          text=True, timeout=840)
    print("\n" + done.stdout)
    SCREENSHOTS.mkdir(exist_ok=True)
    (SCREENSHOTS / "large_load.txt").write_text(done.stdout)
    assert done.returncode in (0, 10), done.stderr[-3000:]  # 1 is an error, 10 over 3 s
    measured = re.search(r"^  nasdb ui \(datashader\)\s+(\d+\.\d\d) s  \(first (\d+\.\d\d) s\)",
                         done.stdout, re.M)
    assert measured, done.stdout + done.stderr[-3000:]
    median, first = (float(v) for v in measured.groups())
    assert median < REGRESSION_GUARD_S and first < REGRESSION_GUARD_S, done.stdout

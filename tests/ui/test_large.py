"""100,000 models: the overview must load and render (datashader) in headless Chromium within 3 s.

The measurement is `benchmarks/ui.py` with nasdb alone (``--baselines none``): it builds the
models through the real store and projector (lean streams, `synthetic.lean_log`), serves them
with ``nasdb ui --port P`` in its own process, and times three page loads in fresh browser
contexts after a warm-up load; it exits 1 when the median is over its 3 s target.
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
BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "ui.py"

pytestmark = [
    pytest.mark.timeout(900),
    pytest.mark.skipif(N_MODELS <= 0, reason="NASDB_UI_LARGE=0 skips the large-page test"),
]


def test_overview_of_many_models_loads_and_renders_within_3_s(pg_admin_url: str) -> None:
    if not Path(CHROMIUM).exists():
        missing(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    args = ["--url", pg_admin_url, "--models", str(N_MODELS), "--baselines", "none",
            "--loads", "3", "--screenshots", str(SCREENSHOTS / "large")]
    done = subprocess.run([sys.executable, str(BENCHMARK), *args], capture_output=True,
                          text=True, timeout=840)
    print("\n" + done.stdout)
    SCREENSHOTS.mkdir(exist_ok=True)
    (SCREENSHOTS / "large_load.txt").write_text(done.stdout)
    assert re.search(r"^  nasdb ui \(datashader\)\s+\d+\.\d\d s", done.stdout, re.M), (
        done.stdout + done.stderr[-3000:])
    assert done.returncode != 1, done.stderr[-3000:]  # 1 is an error, 10 the target missed
    assert done.returncode == 0, f"over the 3 s budget (first load or median):\n{done.stdout}"

"""100,000 models: the overview must load and render (datashader) in headless Chromium.

The database is built once for this module through the real store and projector, but with a lean
stream per model (ArchitectureProposed + TrainingCompleted, `synthetic.lean_log`): that is all
the overview reads, and it keeps the build to about two minutes. The app is served the way a
person serves it, by ``nasdb ui --port P`` in its own process (so the measurement is not shared
with the test process's other servers and threads). ``NASDB_UI_LARGE`` sets the model count
(``NASDB_UI_LARGE=0`` skips the test, for a quick local run).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from nasdb.ingest.synthetic import load_lean
from nasdb.schema import Database
from nasdb.ui.app._server import _wait_listening

from ._fixtures import free_port
from .conftest import SCREENSHOTS, _drop, _new_database, shot

N_MODELS = int(os.environ.get("NASDB_UI_LARGE", "100000") or 0)
#: The issue's budget for loading and rendering the overview (about 1.7-2.3 s on the 2-core VM).
TARGET_S = 3.0

pytestmark = [
    pytest.mark.timeout(900),
    pytest.mark.skipif(N_MODELS <= 0, reason="NASDB_UI_LARGE=0 skips the large-page test"),
]

#: True once the overview's plot canvas shows the datashader image: the caption says the plot
#: is rasterised and the largest canvas has many painted (non-white) pixels.
_RENDERED = """() => {
  const texts = [], canvases = [];
  const walk = (n) => {
    if (n.nodeType === Node.TEXT_NODE) texts.push(n.textContent);
    if (n.tagName === "CANVAS") canvases.push(n);
    if (n.shadowRoot) walk(n.shadowRoot);
    for (const c of n.childNodes) walk(c);
  };
  walk(document.body);
  if (!texts.join(" ").includes("rasterised with datashader")) return false;
  let best = 0;
  for (const c of canvases) {
    if (c.width < 400 || c.height < 300) continue;
    const ctx = c.getContext("2d");
    if (!ctx) continue;
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    let painted = 0;
    for (let i = 0; i < d.length; i += 16) {
      if (d[i + 3] > 0 && (d[i] < 200 || d[i + 1] < 200 || d[i + 2] < 200)) painted++;
    }
    best = Math.max(best, painted);
  }
  return best > 2000;
}"""


@pytest.fixture(scope="module")
def large_url(pg_admin_url: str, template_url: str) -> Iterator[str]:
    name, url = _new_database(pg_admin_url, "nasdb_ui_large")
    db = Database(url)
    phases = load_lean(db, N_MODELS)
    print(f"\nbuilt {N_MODELS:,} models through the store: append {phases['append']:.0f} s, "
          f"projection {phases['project']:.0f} s")
    db.engine.dispose()
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "nasdb.ui.cli", "ui", "--port", str(port), "--no-browser"],
        env={**os.environ, "NASDB_DATABASE_URL": url},
    )
    try:
        _wait_listening("127.0.0.1", port, timeout=120)
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.terminate()
        server.wait(timeout=30)
    _drop(pg_admin_url, name)


def _load(browser: Any, url: str) -> tuple[float, Any, Any]:
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    page = context.new_page()
    started = time.perf_counter()
    page.goto(url)
    page.wait_for_function(_RENDERED, timeout=60_000, polling=50)
    return time.perf_counter() - started, context, page


def test_overview_of_many_models_loads_and_renders_quickly(browser: Any, large_url: str) -> None:
    # The first load also warms the server process (imports, JIT of datashader's numba
    # kernels): what a user pays once per server, not per page. Then three loads; the median
    # is the measurement.
    warm, context, _ = _load(browser, large_url)
    context.close()
    times = []
    for _ in range(3):
        elapsed, context, page = _load(browser, large_url)
        times.append(elapsed)
        if len(times) < 3:
            context.close()
    median = statistics.median(times)
    line = (f"{N_MODELS:,} models: overview loaded and rendered in {median:.2f} s "
            f"(median of 3 page loads: {', '.join(f'{t:.2f}' for t in times)} s; "
            f"first load after server start: {warm:.2f} s)")
    print("\n" + line)
    SCREENSHOTS.mkdir(exist_ok=True)
    (SCREENSHOTS / "large_load.txt").write_text(line + "\n")
    shot(page, "overview-large")
    context.close()
    assert median < TARGET_S, f"{line} — over the {TARGET_S} s budget"

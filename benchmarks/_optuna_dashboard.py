"""Baseline for the web-UI benchmark: the models as trials of one Optuna study in optuna-dashboard.

Each model is a finished trial of a two-objective study (minimize params, maximize accuracy) with
two hyperparameters (``params``, log-float; ``op``, categorical), kept in a journal file. The
study page opens on its Pareto-front plot (objective 0 = params against objective 1 = accuracy,
one SVG marker per trial); a load counts as done once that plot has drawn every point.
Used by ``benchmarks/ui.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

STUDY_NAME = "nasdb-models"
OPS = ("conv1x1", "conv3x3", "maxpool")

#: True once the Pareto-front plot (the top plot of the study page) has an SVG marker for every
#: point of its marker traces; Plotly draws a scatter's markers as ``.scatterlayer .point`` paths.
study_page_rendered_js = """() => {
  const el = document.getElementById("graph-pareto-front");
  if (!el || !el._fullData) return false;
  let expected = 0;
  for (const t of el._fullData) {
    if (t.visible === true && String(t.mode || "").includes("markers")) {
      expected += t._length ?? (t.x ? t.x.length : 0);
    }
  }
  return expected > 0 && el.querySelectorAll(".scatterlayer .point").length >= expected;
}"""

#: Resolves after the next frame has been produced (the drawn points have been painted).
_NEXT_FRAME_JS = "() => new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)))"


def version() -> str:
    """The installed optuna-dashboard version."""
    from importlib.metadata import version as dist_version

    return dist_version("optuna-dashboard")


def write_study(path: Path, params: np.ndarray, acc: np.ndarray) -> str:
    """Write a study with one finished trial per model to the journal file ``path``; returns its name.

    The study is created through Optuna; the trials are appended in one batch of the journal's
    create-trial records (what ``study.add_trials`` writes one at a time, which takes ~70 s for
    100,000 trials). ``count_trials`` reads the file back with Optuna.
    """
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, distribution_to_json
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from optuna.storages.journal._storage import JournalOperation
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    backend = JournalFileBackend(str(path))
    storage = JournalStorage(backend)
    study = optuna.create_study(storage=storage, study_name=STUDY_NAME,
                                directions=["minimize", "maximize"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["params", "accuracy"])
    study_id = storage.get_study_id_from_name(STUDY_NAME)
    distributions = {
        "params": distribution_to_json(FloatDistribution(1e3, 1e7, log=True)),
        "op": distribution_to_json(CategoricalDistribution(OPS)),
    }
    worker = f"nasdb-bench-{uuid.uuid4()}"
    start = datetime.now(UTC)
    logs = []
    for i, (p, a) in enumerate(zip(np.asarray(params, float).tolist(),
                                   np.asarray(acc, float).tolist(), strict=True)):
        began = start + timedelta(seconds=i)
        logs.append({
            "op_code": JournalOperation.CREATE_TRIAL, "worker_id": worker, "study_id": study_id,
            "datetime_start": began.isoformat(timespec="microseconds"),
            "datetime_complete": (began + timedelta(seconds=0.9)).isoformat(timespec="microseconds"),
            "state": TrialState.COMPLETE, "value": None, "values": [p, a],
            "distributions": distributions, "params": {"params": p, "op": i % len(OPS)},
            "user_attrs": {}, "system_attrs": {}, "intermediate_values": {},
        })
    backend.append_logs(logs)
    return STUDY_NAME


def count_trials(path: Path, study_name: str) -> int:
    """Finished trials of ``study_name`` as Optuna reads them from the journal file ``path``."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from optuna.trial import TrialState

    storage = JournalStorage(JournalFileBackend(str(path)))
    study = optuna.load_study(study_name=study_name, storage=storage)
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def study_url(base: str, study_id: int) -> str:
    """The study page under the dashboard URL ``base``."""
    return f"{base.rstrip('/')}/studies/{study_id}"


@contextmanager
def serve_dashboard(storage: str, port: int, study_name: str | None = None,
                    start_timeout_s: float = 300) -> Iterator[str]:
    """Run ``optuna-dashboard`` on ``storage`` (a journal file path or an RDB URL) at 127.0.0.1.

    Yields the dashboard URL base (``http://127.0.0.1:PORT/dashboard``) once it answers, or the
    page of ``study_name`` if given. The server reads the whole journal before it listens.
    """
    exe = Path(sys.executable).with_name("optuna-dashboard")
    args = [str(exe), storage, "--host", "127.0.0.1", "--port", str(port), "--quiet"]
    if Path(storage).is_file():
        args += ["--storage-class", "JournalFileStorage"]
    root = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as errors:
        server = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=errors)
        try:
            studies = _wait_answering(server, f"{root}/api/studies", start_timeout_s, errors)
            base = f"{root}/dashboard"
            if study_name is None:
                yield base
            else:
                ids = [s["study_id"] for s in studies["study_summaries"]
                       if s["study_name"] == study_name]
                if not ids:
                    raise RuntimeError(f"optuna-dashboard does not list study {study_name!r}")
                yield study_url(base, ids[0])
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _wait_answering(server: subprocess.Popen[bytes], url: str, timeout_s: float,
                    errors: Any) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            errors.seek(0)
            raise RuntimeError(f"optuna-dashboard exited ({server.returncode}): "
                               f"{errors.read().decode(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return json.load(response)
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"optuna-dashboard did not answer {url} within {timeout_s:.0f} s")


def wait_rendered(page: Any, timeout_s: float) -> None:
    """Wait until the study page's Pareto-front plot has painted all its points.

    Raises Playwright's TimeoutError after ``timeout_s``.
    """
    page.wait_for_function(study_page_rendered_js, timeout=timeout_s * 1000, polling="raf")
    page.evaluate(_NEXT_FRAME_JS)

"""Under CI a missing prerequisite fails the run; outside CI it is a skip with the fix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROBE = '''
import pytest
from tests._prerequisites import missing

def test_needs_chromium():
    missing("no Chromium at /nope (apt-get install chromium)")

def test_skips_for_no_reason_a_user_chose():
    pytest.skip("because")

def test_deliberate():
    pytest.skip("no CUDA device")
'''


def run_probe(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_probe.py").write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = str(ROOT)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest",
         "-rs", str(tmp_path / "test_probe.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )


def test_outside_ci_a_missing_prerequisite_is_a_skip(tmp_path: Path) -> None:
    done = run_probe(tmp_path, None)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 skipped" in done.stdout
    assert "no Chromium at /nope (apt-get install chromium)" in done.stdout


@pytest.mark.parametrize("ci", ["true", "1"])
def test_under_ci_a_missing_prerequisite_fails_the_run(tmp_path: Path, ci: str) -> None:
    done = run_probe(tmp_path, ci)
    assert done.returncode == 1, done.stdout + done.stderr
    assert ("no Chromium at /nope (apt-get install chromium); CI must provide it (this run has "
            "CI set, so it is not skipped)") in done.stdout
    assert "CI is set, so these 1 skip(s) fail the run:" in done.stdout
    assert "test_skips_for_no_reason_a_user_chose: " in done.stdout
    assert "test_deliberate" not in done.stdout.split("fail the run:")[1]
    assert "1 failed, 2 skipped" in done.stdout

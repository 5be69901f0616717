"""The cluster launcher examples in docs/cluster use only commands and options nasdb documents."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import click

from nasdb.ui.cli import cli

ROOT = Path(__file__).resolve().parents[2]


def _worker_options() -> set[str]:
    command = cli.commands["worker"]
    return {opt for p in command.params if isinstance(p, click.Option) and not p.hidden
            for opt in p.opts}


def _check(argv: list[str]) -> None:
    assert argv[:2] == ["nasdb", "worker"], argv
    readme = (ROOT / "README.md").read_text()
    known = _worker_options()
    for arg in argv[2:]:
        if arg.startswith("--"):
            assert arg in known, f"{arg} is not an option of nasdb worker"
            assert f"`{arg}" in readme or f" {arg}" in readme, f"{arg} is not in the README"
    ctx = cli.commands["worker"].make_context("worker", argv[2:])  # parses as the CLI would
    assert ctx.params["slots"] >= 1


def test_the_kubernetes_job_runs_a_documented_worker_command() -> None:
    text = (ROOT / "docs" / "cluster" / "kubernetes-job.yaml").read_text()
    line = next(line for line in text.splitlines() if line.strip().startswith("command:"))
    _check(json.loads(line.split(":", 1)[1]))
    assert "sslmode=verify-full" in text and "NASDB_DATABASE_URL" in text


def test_the_slurm_array_runs_a_documented_worker_command() -> None:
    text = (ROOT / "docs" / "cluster" / "slurm-array.sh").read_text()
    line = next(line for line in text.splitlines() if line.startswith("exec nasdb "))
    _check(shlex.split(line)[1:])
    assert re.search(r"^#SBATCH --array=", text, re.M) and "sslmode=verify-full" in text

"""``nasdb study create|run|status|list|pause|resume|stop|refine|importance``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import Any

import click

from nasdb.schema.errors import InvalidRequest
from nasdb.ui._context import Context, format_option, pass_ctx
from nasdb.ui._output import emit


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _assignments(values: tuple[str, ...], flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidRequest(f"{flag} takes KEY=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def _space(space_json: str | None, epochs: int | None, lr: str | None, max_layers: int | None,
           max_params: int | None, extended: bool) -> Any:
    from nasdb.search.strategies import StudySpace

    if space_json is not None and not space_json.lstrip().startswith("{"):
        space = StudySpace.named(space_json.strip())
    elif space_json is not None:
        try:
            data = json.loads(space_json)
        except json.JSONDecodeError as e:
            raise InvalidRequest(f"--space is not valid JSON: {e}") from e
        if not isinstance(data, dict):
            raise InvalidRequest("--space must be a JSON object")
        space = StudySpace.from_dict(data)
    else:
        space = StudySpace.remap() if extended else StudySpace.modern()
    if extended:
        from nasdb.search import SearchSpace

        data = space.to_dict()
        data["architecture"] = {**SearchSpace.extended().to_dict(),
                                "max_layers": space.architecture.max_layers,
                                "max_params": space.architecture.max_params}
        space = StudySpace.from_dict(data)
    sets = {}
    if epochs is not None:
        sets["epochs"] = str(epochs)
    if lr is not None:
        sets["lr"] = lr
    if max_layers is not None:
        sets["max_layers"] = str(max_layers)
    if max_params is not None:
        sets["max_params"] = str(max_params)
    if sets:
        space, _ = space.refined(sets)
    return space


budget_options = [
    click.option("--budget-models", type=int, default=None, help="Stop after N models."),
    click.option("--budget-epochs", type=int, default=None, help="Stop after N trained epochs."),
    click.option("--budget-seconds", type=int, default=None, help="Stop N seconds after the first step."),
]


def _budget_options(fn: Any) -> Any:
    for option in reversed(budget_options):
        fn = option(fn)
    return fn


def _budget(models: int | None, epochs: int | None, seconds: int | None) -> dict[str, Any]:
    return {k: v for k, v in (("models", models), ("epochs", epochs), ("seconds", seconds))
            if v is not None}


@click.group()
def study() -> None:
    """Studies: a dataset, a search space, objectives, a budget and a strategy."""


@study.command("create")
@click.option("--dataset", required=True, help="A registered dataset (nasdb dataset add ...).")
@click.option("--strategy", default=None, help="random, evolution, hyperband, asha, pbt, tpe, "
              "nsga2, bohb or guided (needs: nasdb recommend fit). Default: the strongest "
              "measured search, ASHA over 1/3/9 epochs promoting by Pareto fronts, models of at "
              "most 10k parameters competing on their own (README, Studies).")
@_budget_options
@click.option("--objective", "objectives", multiple=True, help="val_acc (best validation "
              "accuracy), acc (test accuracy), params, flops, latency or acc:CLASS (one class's "
              "test accuracy, its recall); repeat for several (default: val_acc, params). The "
              "first one ranks.")
@click.option("--set", "sets", multiple=True, help="Strategy setting KEY=VALUE (e.g. R=9, "
              "eta=3, population=8, parallel=4, seed=1, promote=primary, split_params=0). "
              "Repeatable.")
@click.option("--space", "space_json", help="modern (default), remap (REMAP's space exactly), "
              "extended, or the search space as JSON: {\"architecture\": {...}, "
              "\"hyperparameters\": {...}, \"dropped\": [...], \"max_blocks\": 3}.")
@click.option("--epochs", type=int, help="Epochs each sampled model trains (default 10).")
@click.option("--lr", help="Learning-rate range LOW..HIGH (log-scaled).")
@click.option("--max-layers", type=int, help="Most body layers a sampled model has.")
@click.option("--max-params", type=int, help="Most parameters a sampled model has.")
@click.option("--extended", is_flag=True, help="REMAP's space with our extended layer grammar.")
@click.option("--name", help="The study's id (a slug); default s<N>.")
@pass_ctx
def create(ctx: Context, dataset: str, strategy: str | None, budget_models: int | None,
           budget_epochs: int | None, budget_seconds: int | None, objectives: tuple[str, ...],
           sets: tuple[str, ...], space_json: str | None, epochs: int | None, lr: str | None,
           max_layers: int | None, max_params: int | None, extended: bool,
           name: str | None) -> None:
    """Create a study (StudyCreated) and print its id; run it with nasdb study run ID."""
    from nasdb.steer import create_study

    ctx.wait_projected()
    settings = {k: _value(v) for k, v in _assignments(sets, "--set").items()}
    study_id = create_study(
        ctx.store, dataset, strategy,
        budget=_budget(budget_models, budget_epochs, budget_seconds) or None,
        settings=settings,
        space=_space(space_json, epochs, lr, max_layers, max_params, extended),
        objectives=objectives or ("val_acc", "params"), name=name,
    )
    ctx.wait_projected()
    click.echo(study_id)


@study.command("run")
@click.argument("study_id")
@click.option("--workers", type=int, default=0, show_default=True,
              help="Spawn N `nasdb worker` processes; 0 trains in this process.")
@click.option("--parallel", type=int, default=None, help="Models in flight at once (default: "
              "the strategy's parallel setting, at least --workers).")
@click.option("--lease-seconds", type=float, default=None, help="Worker lease length.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default=None)
@click.option("--poll", type=float, default=0.5, show_default=True,
              help="Seconds between looks at the log while waiting.")
@pass_ctx
def run(ctx: Context, study_id: str, workers: int, parallel: int | None,
        lease_seconds: float | None, device: str | None, poll: float) -> None:
    """Drive the study's strategy until its budget is used (restartable after a crash)."""
    from nasdb.read import get_study
    from nasdb.steer import run_study
    from nasdb.ui._ranker import lazy_ranker

    if workers < 0:
        raise InvalidRequest(f"--workers must be 0 or more, got {workers}")
    ctx.wait_projected()
    get_study(ctx.db, study_id)
    procs: list[subprocess.Popen[bytes]] = []
    train = None
    if workers == 0:
        from nasdb.trainers.worker import Worker

        worker = Worker(ctx.db, device=device, lease_seconds=lease_seconds,
                        log=lambda m: click.echo(m))
        train = lambda: worker.run(max_jobs=1)  # noqa: E731
    else:
        env = {**os.environ, "NASDB_DATABASE_URL": ctx.db.url}
        args = [sys.executable, "-m", "nasdb.ui.cli", "worker"]
        if lease_seconds:
            args += ["--lease-seconds", str(lease_seconds)]
        if device:
            args += ["--device", device]
        procs = [subprocess.Popen(args, env=env) for _ in range(workers)]
    try:
        state = run_study(ctx.db, study_id, train=train,
                          parallel=max(parallel or 0, workers) or None, poll_seconds=poll,
                          on_progress=click.echo, rank=lazy_ranker(ctx.db))
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
    click.echo(f"study {study_id}: {state}")


def _bounds(text: str) -> tuple[int, ...]:
    from nasdb.query._compiler import _SI

    out = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        unit = part[-1] if part[-1] in _SI and not part[-1].isdigit() else ""
        try:
            value = float(part[: len(part) - len(unit)]) * _SI[unit]
        except ValueError:
            value = 0
        if value < 1:
            raise InvalidRequest(f"--bounds takes parameter counts like 10k,100k,1M, got {part!r}")
        out.append(int(value))
    if not out:
        raise InvalidRequest("--bounds needs at least one parameter count, e.g. 100k")
    return tuple(out)


@study.command("status")
@click.argument("study_id")
@click.option("--bounds", default="10k,100k,1M", show_default=True,
              help="Parameter bounds to show the best model under.")
@format_option
@pass_ctx
def status(ctx: Context, study_id: str, bounds: str, fmt: str) -> None:
    """Budget used, best model so far (overall and under each parameter bound), models by
    status. ``acc`` is test accuracy; models are ranked by ``val_acc``."""
    from nasdb.steer import study_status

    row = study_status(ctx.db, study_id, _bounds(bounds))
    if fmt == "table":
        under = row.pop("best_under")
        emit([{"key": k, "value": v} for k, v in row.items()], ["key", "value"], fmt)
        emit(under, ["params_max", "model_id", "params", "val_acc", "acc", "glyph"], fmt,
             title="best so far under each parameter bound")
    else:
        emit([row], list(row), fmt)


@study.command("list")
@format_option
@pass_ctx
def list_studies(ctx: Context, fmt: str) -> None:
    """Every study with its strategy, state and model count."""
    from nasdb.read import list_studies

    ctx.wait_projected()
    columns = ("id", "dataset_id", "strategy", "state", "models_count", "budget",
               "previous_study_id", "created_at")
    rows = [{c: getattr(s, c) for c in columns} for s in list_studies(ctx.db)]
    emit(rows, None if rows else ["id"], fmt)


@study.command("pause")
@click.argument("study_id")
@click.option("--reason", default="")
@pass_ctx
def pause(ctx: Context, study_id: str, reason: str) -> None:
    """Workers stop claiming the study's jobs; its driver stops proposing."""
    from nasdb.steer import pause_study

    pause_study(ctx.store, study_id, reason)
    click.echo(f"paused {study_id}")


@study.command("resume")
@click.argument("study_id")
@pass_ctx
def resume(ctx: Context, study_id: str) -> None:
    """Resume a paused study."""
    from nasdb.steer import resume_study

    resume_study(ctx.store, study_id)
    click.echo(f"resumed {study_id}")


@study.command("stop")
@click.argument("study_id")
@click.option("--reason", default="")
@pass_ctx
def stop(ctx: Context, study_id: str, reason: str) -> None:
    """Stop a study for good."""
    from nasdb.steer import stop_study

    stop_study(ctx.store, study_id, reason)
    click.echo(f"stopped {study_id}")


@study.command("refine")
@click.argument("study_id")
@click.option("--set", "sets", multiple=True, help="KEY=VALUE: lr=1e-4..1e-2, "
              "batch_size=64,128, filters=16,32, epochs=5, max_layers=6 ... Repeatable.")
@click.option("--drop", "drops", multiple=True, help="A hyperparameter to fix at its base value "
              "(lr, optimizer, weight_decay, batch_size) or a layer type to leave out (dropout, "
              "batchnorm, ...). Repeatable.")
@click.option("--name", help="The next study's id.")
@_budget_options
@pass_ctx
def refine(ctx: Context, study_id: str, sets: tuple[str, ...], drops: tuple[str, ...],
           name: str | None, budget_models: int | None, budget_epochs: int | None,
           budget_seconds: int | None) -> None:
    """Refine the search space and start the next study, linked to this one."""
    from nasdb.steer import refine_study

    budget = _budget(budget_models, budget_epochs, budget_seconds) or None
    new_id, changes = refine_study(ctx.store, study_id, _assignments(sets, "--set"), drops,
                                   name=name, budget=budget)
    for change in changes:
        click.echo(f"  {change}")
    click.echo(new_id)


@study.command("importance")
@click.argument("study_id")
@click.option("--objective", default=None, help="Which objective (default: the study's first).")
@click.option("--seed", type=int, default=0, show_default=True)
@format_option
@pass_ctx
def importance(ctx: Context, study_id: str, objective: str | None, seed: int, fmt: str) -> None:
    """Hyperparameter importance (fANOVA, PED-ANOVA), single and pairwise, and marginal curves."""
    from nasdb.steer._importance import study_importance

    result = study_importance(ctx.db, study_id, objective=objective, seed=seed)
    if fmt == "json":
        click.echo(json.dumps(result, indent=2, default=str))
        return
    emit(result["single"], ["param", "fanova", "ped_anova"], fmt,
         title=f"importance for {result['objective']} over {result['trials']} trials")
    emit(result["pairwise"], ["params", "fanova", "ped_anova", "interaction"], fmt,
         title="pairwise")


def register(cli: click.Group) -> None:
    cli.add_command(study)

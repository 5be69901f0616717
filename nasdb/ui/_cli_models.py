"""Model commands: dataset add/list, train, sample, models, worker, reproduce, demo."""

from __future__ import annotations

import json
import time
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from nasdb.schema import settings
from nasdb.schema.errors import InvalidRequest
from nasdb.schema.vocabulary import OPTIMIZERS, Origin
from nasdb.ui._context import Context, format_option, pass_ctx
from nasdb.ui._output import emit

console = Console(stderr=True)

MODEL_COLUMNS = ["id", "glyph", "origin", "params", "flops", "status", "epochs", "val_acc",
                 "test_acc"]


# --- datasets -------------------------------------------------------------------------------


@click.group()
def dataset() -> None:
    """Register and list datasets."""


@dataset.command("add")
@click.argument("kind", type=click.Choice(["digits", "fashion-mnist", "cifar10", "imagefolder"]))
@click.option("--name", help="Dataset id (default: the kind).")
@click.option("--path", help="Folder with the files (default for fashion-mnist: Debian's).")
@click.option("--val-seed", default=0, show_default=True, help="Seed of the validation split.")
@click.option("--limit", type=int, help="Use at most this many training images.")
@pass_ctx
def dataset_add(ctx: Context, kind: str, name: str | None, path: str | None, val_seed: int,
                limit: int | None) -> None:
    """Register a dataset: checks the files, records its fingerprint, shape and classes."""
    from nasdb.trainers.registry import register_dataset

    with console.status(f"loading {kind}"):
        dataset_id = register_dataset(ctx.store, kind, name, path, val_seed, limit)
    from nasdb.read import dataset_row

    ctx.wait_projected()
    row = dataset_row(ctx.db, dataset_id)
    click.echo(f"{dataset_id}: {row.kind} {row.channels}x{row.height}x{row.width}, "
               f"{row.num_classes} classes, {row.train_size}/{row.val_size}/"
               f"{row.test_size} train/val/test images, fingerprint {row.fingerprint[:12]}")


@dataset.command("list")
@format_option
@pass_ctx
def dataset_list(ctx: Context, fmt: str) -> None:
    """List registered datasets."""
    from nasdb.read import list_datasets

    ctx.wait_projected()
    columns = ("id", "kind", "source", "channels", "height", "width", "num_classes", "train_size",
               "val_size", "test_size")
    rows = [{**{c: getattr(d, c) for c in columns}, "fingerprint": d.fingerprint[:12]}
            for d in list_datasets(ctx.db)]
    emit(rows, None, fmt)


# --- proposing --------------------------------------------------------------------------------


def _hyperparameters(epochs: int | None, lr: float | None, batch_size: int | None,
                     optimizer: str | None, seed: int | None) -> Any:
    from nasdb.search import Hyperparameters

    values = {"epochs": epochs, "lr": lr, "batch_size": batch_size, "optimizer": optimizer,
              "seed": seed}
    return Hyperparameters.from_json({k: v for k, v in values.items() if v is not None})


hp_options = [
    click.option("--epochs", type=int, help="Epochs to train (default 10)."),
    click.option("--lr", type=float, help="Learning rate (default 1e-3)."),
    click.option("--batch-size", type=int, help="Batch size (default 256)."),
    click.option("--optimizer", type=click.Choice(OPTIMIZERS)),
    click.option("--seed", type=int, help="Training seed (default 0)."),
]


def with_hp_options(fn: Any) -> Any:
    for option in reversed(hp_options):
        fn = option(fn)
    return fn


@click.command("train")
@click.option("--dataset", "dataset_id", required=True, help="A registered dataset id.")
@click.option("--reference", help="A reference classifier: cnn, vgg, alexnet, resnet18, "
                                  "densenet, mobilenet.")
@click.option("--layers", help="An architecture as JSON: a layer list or {\"layers\": [...]}.")
@click.option("--priority", default=0, show_default=True, help="Higher is trained first.")
@with_hp_options
@pass_ctx
def train_cmd(ctx: Context, dataset_id: str, reference: str | None, layers: str | None,
              priority: int, **hp: Any) -> None:
    """Queue one model for training (a reference classifier or a layer list); print its id."""
    from nasdb.read import get_dataset
    from nasdb.search import REFERENCE_NAMES, Architecture
    from nasdb.steer import Proposal, propose

    if (reference is None) == (layers is None):
        raise InvalidRequest("give exactly one of --reference NAME or --layers JSON")
    if reference is not None:
        if reference not in REFERENCE_NAMES:
            raise InvalidRequest(f"unknown reference classifier {reference!r}; choose one of "
                                 f"{', '.join(REFERENCE_NAMES)}")
        arch = Architecture(reference=reference)
        origin: Origin = "reference"
    else:
        assert layers is not None
        try:
            parsed = json.loads(layers)
        except json.JSONDecodeError as e:
            raise InvalidRequest(f"--layers is not valid JSON: {e.msg} at character {e.pos}") from e
        arch = Architecture.from_json(parsed if isinstance(parsed, dict) else {"layers": parsed})
        origin = "handcrafted"
    ctx.wait_projected()
    ds = get_dataset(ctx.db, dataset_id)
    ids = propose(ctx.store, ds, [Proposal(arch, _hyperparameters(**hp), origin)],
                  priority=priority)
    ctx.wait_projected()
    click.echo(ids[0])


@click.command("sample")
@click.option("--dataset", "dataset_id", required=True, help="A registered dataset id.")
@click.option("-n", "count", default=10, show_default=True, help="How many models.")
@click.option("--max-params", type=int, default=1_000_000, show_default=True)
@click.option("--extended", is_flag=True, help="Use the extended space (padding, BatchNorm, GAP).")
@click.option("--sample-seed", type=int, default=None, help="Seed of the sampler (default: random).")
@with_hp_options
@pass_ctx
def sample_cmd(ctx: Context, dataset_id: str, count: int, max_params: int, extended: bool,
               sample_seed: int | None, **hp: Any) -> None:
    """Sample architectures from REMAP's Markov chain and queue them; print their ids."""
    import random

    from nasdb.read import get_dataset
    from nasdb.search import SearchSpace, sample
    from nasdb.steer import Proposal, propose

    if count < 1:
        raise InvalidRequest("-n must be at least 1")
    ctx.wait_projected()
    ds = get_dataset(ctx.db, dataset_id)
    space = SearchSpace.extended(max_params=max_params) if extended else \
        SearchSpace(max_params=max_params)
    seed = sample_seed if sample_seed is not None else random.randrange(2**31)
    hyper = _hyperparameters(**hp)
    drawn = sample(ds.input_shape, ds.num_classes, count, seed=seed, space=space)
    proposals = [Proposal(arch, hyper, "sampled", extra={"sampler_seed": seed, "index": i})
                 for i, (arch, _) in enumerate(drawn)]
    ids = propose(ctx.store, ds, proposals)
    ctx.wait_projected()
    for model_id in ids:
        click.echo(model_id)


# --- reading --------------------------------------------------------------------------------


def model_rows(ctx: Context, *, status: str | None = None, dataset_id: str | None = None,
               limit: int | None = None) -> list[dict[str, Any]]:
    """The `nasdb models` listing (`MODEL_COLUMNS`), in id order."""
    from nasdb.read import list_models

    rows = list_models(ctx.db, dataset_id=dataset_id, limit=limit or None,
                       statuses=[status] if status else None)
    return [{"id": m.id, "glyph": m.glyph, "origin": m.origin, "params": m.params,
             "flops": m.flops, "status": m.status, "epochs": m.epochs_trained,
             "val_acc": m.best_val_acc, "test_acc": m.test_acc} for m in rows]


@click.command("models")
@click.option("--status", help="Only models with this status.")
@click.option("--dataset", "dataset_id", help="Only models on this dataset.")
@click.option("--limit", type=click.IntRange(min=1))
@format_option
@pass_ctx
def models_cmd(ctx: Context, status: str | None, dataset_id: str | None, limit: int | None,
               fmt: str) -> None:
    """List models: id, glyph, params, FLOPs, status, epochs, accuracies."""
    ctx.wait_projected()
    emit(model_rows(ctx, status=status, dataset_id=dataset_id, limit=limit), MODEL_COLUMNS, fmt)


# --- training -------------------------------------------------------------------------------


def _epoch_printer() -> Any:
    def show(model_id: str, r: Any) -> None:
        console.print(f"  {model_id} epoch {r.epoch}: loss {r.train_loss:.3f}, "
                      f"val acc {r.val_acc:.3f} ({r.seconds:.1f}s)")
    return show


@click.command("worker")
@click.option("--device", help="auto, cpu, cuda or cuda:N (env NASDB_DEVICE; default: cuda if "
              "available).")
@click.option("--gpus", help="One worker process per GPU under a supervisor: 'all' or indices "
              "like 0,1.")
@click.option("--slots", type=int, envvar="NASDB_SLOTS", default=1, show_default=True,
              help="Jobs trained at once per device, one process each (env NASDB_SLOTS).")
@click.option("--memory", help="Memory one worker process may use on its device, e.g. 8G (env "
              "NASDB_DEVICE_MEMORY).")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]),
              help="auto = bf16 on CUDA, fp32 on CPU (env NASDB_PRECISION).")
@click.option("--compile", "compile_mode", type=click.Choice(["off", "on", "auto"]),
              help="torch.compile for training (env NASDB_COMPILE; default off).")
@click.option("--once", is_flag=True, help="Train at most one job, then exit.")
@click.option("--max-jobs", type=click.IntRange(min=1), help="Exit after this many jobs.")
@click.option("--exit-when-idle", is_flag=True, help="Exit when no job is left to claim.")
@click.option("--lease-seconds", type=click.FloatRange(min=0.1, max=86400),
              help="Lease length (env NASDB_LEASE_SECONDS).")
@click.option("--name", help="Worker name (default host-pid-random).")
@click.option("--slot-of", type=int, default=1, hidden=True,
              help="Set by the supervisor: this process is one of N slots on its device.")
@pass_ctx
def worker_cmd(ctx: Context, device: str | None, gpus: str | None, slots: int,
               memory: str | None, precision: str | None, compile_mode: str | None, once: bool,
               max_jobs: int | None, exit_when_idle: bool, lease_seconds: float | None,
               name: str | None, slot_of: int) -> None:
    """Claim queued jobs and train them, appending every epoch (runs until stopped).

    With --gpus or --slots above 1 this process supervises one worker process per GPU and slot,
    restarts one that crashes, and stops them all on SIGTERM or Ctrl-C.
    """
    from nasdb.trainers.devices import parse_device, parse_gpus, select_device
    from nasdb.trainers.memory import parse_bytes

    if slots < 1:
        raise InvalidRequest(f"--slots must be 1 or more, got {slots}")
    if memory is not None:
        parse_bytes(memory)
    if gpus is not None:
        if device is not None:
            raise InvalidRequest("give either --gpus or --device, not both")
        devices = [f"cuda:{i}" for i in parse_gpus(gpus)]
    else:
        devices = [str(select_device(parse_device(device or settings.get("device"))))]
    forwarded = [*(["--memory", memory] if memory else []),
                 *(["--precision", precision] if precision else []),
                 *(["--compile", compile_mode] if compile_mode else []),
                 *(["--once"] if once else []), *(["--max-jobs", str(max_jobs)] if max_jobs else []),
                 *(["--exit-when-idle"] if exit_when_idle else []),
                 *(["--lease-seconds", str(lease_seconds)] if lease_seconds else [])]
    if gpus is not None or slots > 1:
        raise SystemExit(_supervise(ctx, devices, slots, forwarded, name))

    from nasdb.trainers.worker import Worker

    worker = Worker(ctx.db, device=devices[0], name=name, lease_seconds=lease_seconds,
                    log=lambda m: console.print(m), on_epoch=_epoch_printer(), slots=slot_of,
                    memory_limit=memory, precision=precision, compile=compile_mode)
    limit = 1 if once else max_jobs
    console.print(f"worker {worker.name} on {worker.device} "
                  f"({worker.device_facts['device_name']}): waiting for jobs")
    done = worker.run(limit, idle_exit=once or exit_when_idle)
    console.print(f"worker {worker.name}: {done} jobs trained")


def _supervise(ctx: Context, devices: list[str], slots: int, forwarded: list[str],
               name: str | None) -> int:
    """Run one `nasdb worker` process per device and slot until they end or a signal comes."""
    import os
    import sys

    from nasdb.trainers.supervisor import ChildSpec, Supervisor, plan_children

    env = {**os.environ, "NASDB_DATABASE_URL": ctx.db.url}  # children join this database

    def command(spec: ChildSpec) -> list[str]:
        child = [sys.executable, "-m", "nasdb.ui.cli", "worker", "--device", spec.device,
                 "--slots", "1", "--slot-of", str(spec.slots), *forwarded]
        if name:
            child += ["--name", f"{name}-{spec.device.replace(':', '')}-{spec.slot}"]
        return child

    specs = plan_children(devices, slots)
    console.print(f"supervisor {os.getpid()}: {len(specs)} worker process(es) on "
                  f"{', '.join(devices)} ({slots} slot(s) each)")
    code = Supervisor(specs, command, env=env, log=lambda m: console.print(m)).run()
    console.print(f"supervisor {os.getpid()}: all worker processes stopped")
    return code


@click.command("reproduce")
@click.argument("model_id")
@click.option("--device", type=click.Choice(["cpu", "cuda"]))
@pass_ctx
def reproduce_cmd(ctx: Context, model_id: str, device: str | None) -> None:
    """Retrain a finished model from its events alone and compare the accuracy."""
    from nasdb.trainers.reproduce import reproduce

    with console.status(f"retraining {model_id} from its events"):
        report = reproduce(ctx.store, model_id, device)
    click.echo(
        f"{model_id}: recorded test accuracy {report.recorded_acc:.4f}, reproduced "
        f"{report.reproduced_acc:.4f} (difference {report.difference:+.4f}); predictions "
        f"{'identical' if report.same_predictions else 'differ'}; "
        f"{report.epochs} epochs, dataset fingerprint {report.fingerprint[:12]} matches"
    )
    if len(report.replayed) > 1:
        click.echo(f"replayed {report.chain_text()}: each resumed from the weights of the one "
                   "before (TrainingRequested.resume_from)")


def train_queue(ctx: Context, title: str) -> int:
    """Train every queued job in-process with a progress display; return how many completed."""
    from nasdb.read import count_jobs
    from nasdb.trainers.worker import Worker

    total = count_jobs(ctx.db, ("queued", "claimed"))
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn()]
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(title, total=total)

        def on_epoch(model_id: str, r: Any) -> None:
            progress.update(task, description=f"{title}: {model_id} epoch {r.epoch}, "
                                              f"val acc {r.val_acc:.3f}")

        def log(message: str) -> None:
            if " done: " in message or " failed: " in message:
                progress.advance(task)
            progress.console.print(message.split(": ", 1)[-1])

        return Worker(ctx.db, log=log, on_epoch=on_epoch).run(idle_exit=True)


#: The demo's baseline: logistic regression (the head alone, a linear map of the pixels) trained
#: with Adam and a cosine schedule on the same images as the search.
LOGISTIC_REGRESSION_HP = {"optimizer": "adam", "lr": 0.002, "batch_size": 128, "epochs": 10,
                          "schedule": "cosine", "early_stop_patience": 0}
#: The demo's ASHA rungs: 1, 3 and 9 epochs, so that a few minutes train 20 or more models and
#: carry the best of them to 9 epochs (the default study's bottom rung would be 2 epochs on the
#: demo's 15,000 images: `nasdb.steer.default_settings`).
DEMO_RUNGS = {"min_epochs": 1, "R": 9}


@click.command("demo")
@click.option("--dataset", "kind", type=click.Choice(["auto", "digits", "fashion-mnist"]),
              default="auto", show_default=True,
              help="auto = Fashion-MNIST when Debian's files are installed, else digits.")
@click.option("--limit", type=int, default=15000, show_default=True,
              help="Fashion-MNIST training images to use (CPU-friendly); the test split is the "
              "official 10,000 images.")
@click.option("--budget-seconds", type=int, default=260, show_default=True,
              help="Wall time of the search (the default study: ASHA in the modern space).")
@click.option("--max-mflops", type=float, default=4.0, show_default=True,
              help="Largest forward cost per image of a sampled model (MFLOPs).")
@click.option("--no-serve", is_flag=True, help="Exit after the Pareto front.")
@click.option("--port", default=5006, show_default=True)
@pass_ctx
def demo(ctx: Context, kind: str, limit: int, budget_seconds: int, max_mflops: float,
         no_serve: bool, port: int) -> None:
    """The main job end to end: a dataset, a logistic-regression baseline, the default search
    for a wall-time budget with live progress, the Pareto front, the comparison, the UI."""
    from nasdb.read import get_dataset
    from nasdb.search import Architecture, Hyperparameters, HyperparameterSpace, SearchSpace
    from nasdb.search.strategies import StudySpace
    from nasdb.steer import Proposal, create_study, propose
    from nasdb.trainers.datasets import default_dataset
    from nasdb.trainers.registry import register_dataset

    if budget_seconds < 1:
        raise InvalidRequest(f"--budget-seconds must be at least 1, got {budget_seconds}")
    start = time.perf_counter()
    console.print(f"[bold]nasdb demo[/] on {ctx.db.display_url}")
    spec = default_dataset() if kind == "auto" else None
    chosen = spec.kind if spec else kind
    with console.status(f"registering {chosen}"):
        dataset_id = register_dataset(ctx.store, chosen, None, spec.path if spec else None,
                                      0, limit if chosen == "fashion-mnist" else None)
    ctx.wait_projected()
    ds = get_dataset(ctx.db, dataset_id)
    console.print(f"dataset {dataset_id}: {ds.input_shape}, {ds.num_classes} classes, "
                  f"{ds.train_size} training images")
    [baseline] = propose(ctx.store, ds, [Proposal(
        Architecture(), Hyperparameters.from_json(LOGISTIC_REGRESSION_HP), "reference")])
    ctx.wait_projected()
    train_queue(ctx, "logistic-regression baseline")
    space = StudySpace(SearchSpace.modern(max_mflops=max_mflops), HyperparameterSpace.modern())
    study_id = create_study(ctx.store, dataset_id, budget={"seconds": budget_seconds},
                            space=space, settings=DEMO_RUNGS)
    ctx.wait_projected()
    console.print(f"study {study_id}: the default search (ASHA over epochs, modern space) for "
                  f"{budget_seconds}s")
    trained = search_with_progress(ctx, study_id, budget_seconds)
    console.print(f"trained {trained} models in {time.perf_counter() - start:.0f}s")
    show_pareto(ctx, dataset_id)
    console.print(comparison_line(ctx, study_id, baseline))
    if no_serve:
        return
    from nasdb.ui.app import serve

    console.print(f"serving the app on http://127.0.0.1:{port} (Ctrl-C to stop)")
    serve(ctx.db, port=port, show=False)


def search_with_progress(ctx: Context, study_id: str, budget_seconds: int) -> int:
    """Run the study in this process with a live bar over its wall budget; return how many of
    its models finished training."""
    from nasdb.steer import run_study, study_status
    from nasdb.trainers.worker import Worker

    columns = [TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn()]
    trained = 0
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("searching", total=budget_seconds)
        began = time.monotonic()
        best = "no model trained yet"

        def tick(text: str) -> None:
            progress.update(task, completed=min(time.monotonic() - began, budget_seconds),
                            description=f"{text} | {trained} trained | {best}")

        def on_epoch(model_id: str, r: Any) -> None:
            tick(f"{model_id} epoch {r.epoch} val acc {r.val_acc:.3f}")

        def log(message: str) -> None:
            nonlocal trained, best
            if " done: " in message:
                trained += 1
                progress.console.print(message.split(": ", 1)[-1])
                top = study_status(ctx.db, study_id)["best"]
                if top:
                    best = f"best {top['model_id']} test acc {top['acc']:.3f}"
            tick("training")

        worker = Worker(ctx.db, log=log, on_epoch=on_epoch)
        run_study(ctx.db, study_id, train=lambda: worker.run(max_jobs=1), parallel=1)
        tick("done")
    return trained


def comparison_line(ctx: Context, study_id: str, baseline_id: str) -> str:
    """The best model the search found (by validation accuracy) against the logistic-regression
    baseline, on test accuracy."""
    from nasdb.read import get_model
    from nasdb.steer import study_status

    best = study_status(ctx.db, study_id, (10**12,))["best_under"][0]
    base = get_model(ctx.db, baseline_id)
    base_text = (f"logistic regression {baseline_id} ({base.params:,} params) test acc "
                 f"{base.test_acc:.4f}" if base.test_acc is not None else
                 f"logistic regression {baseline_id} did not finish")
    if best["model_id"] is None:
        return f"the search trained no model in its budget; {base_text}"
    gain = f" ({best['acc'] - base.test_acc:+.4f})" if base.test_acc is not None else ""
    return (f"best found {best['model_id']} {best['glyph']} ({best['params']:,} params): test acc "
            f"{best['acc']:.4f}{gain} vs {base_text}, same training images")


def show_pareto(ctx: Context, dataset_id: str) -> None:
    """Print the Pareto front of test accuracy vs parameters."""
    from nasdb.query import run

    result = run(f"pareto dataset={dataset_id}", ctx.db)
    console.print(f"[bold]{result.description}[/]")
    emit(result.rows, [c for c in ("id", "glyph", "params", "acc", "test_acc", "epochs")
                       if c in result.columns], "table")


def register(cli: click.Group) -> None:
    for command in (dataset, train_cmd, sample_cmd, models_cmd, worker_cmd, reproduce_cmd, demo):
        cli.add_command(command)

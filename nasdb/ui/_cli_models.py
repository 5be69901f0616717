"""Model commands: dataset add/list, train, sample, models, worker, reproduce, demo."""

from __future__ import annotations

import json
import time
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from nasdb.schema.errors import InvalidRequest
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
    ctx.project()
    with ctx.db.connect(dict_rows=True) as conn:
        row = conn.execute("select * from datasets where id = %s", (dataset_id,)).fetchone()
    assert row is not None
    click.echo(f"{dataset_id}: {row['kind']} {row['channels']}x{row['height']}x{row['width']}, "
               f"{row['num_classes']} classes, {row['train_size']}/{row['val_size']}/"
               f"{row['test_size']} train/val/test images, fingerprint {row['fingerprint'][:12]}")


@dataset.command("list")
@format_option
@pass_ctx
def dataset_list(ctx: Context, fmt: str) -> None:
    """List registered datasets."""
    ctx.project()
    with ctx.db.connect(dict_rows=True) as conn:
        rows = conn.execute(
            "select id, kind, source, channels, height, width, num_classes, train_size, "
            "val_size, test_size, left(fingerprint, 12) as fingerprint from datasets order by id"
        ).fetchall()
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
    click.option("--optimizer", type=click.Choice(["adam", "adamw", "sgd", "rmsprop"])),
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
    from nasdb.search import REFERENCE_NAMES, Architecture
    from nasdb.steer import Proposal, get_dataset, propose

    if (reference is None) == (layers is None):
        raise InvalidRequest("give exactly one of --reference NAME or --layers JSON")
    if reference is not None:
        if reference not in REFERENCE_NAMES:
            raise InvalidRequest(f"unknown reference classifier {reference!r}; choose one of "
                                 f"{', '.join(REFERENCE_NAMES)}")
        arch = Architecture(reference=reference)
        origin = "reference"
    else:
        assert layers is not None
        try:
            parsed = json.loads(layers)
        except json.JSONDecodeError as e:
            raise InvalidRequest(f"--layers is not valid JSON: {e.msg} at character {e.pos}") from e
        arch = Architecture.from_json(parsed if isinstance(parsed, dict) else {"layers": parsed})
        origin = "handcrafted"
    ctx.project()
    ds = get_dataset(ctx.db, dataset_id)
    ids = propose(ctx.store, ds, [Proposal(arch, _hyperparameters(**hp), origin)],
                  priority=priority)
    ctx.project()
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

    from nasdb.search import SearchSpace, sample
    from nasdb.steer import Proposal, get_dataset, propose

    if count < 1:
        raise InvalidRequest("-n must be at least 1")
    ctx.project()
    ds = get_dataset(ctx.db, dataset_id)
    space = SearchSpace.extended(max_params=max_params) if extended else \
        SearchSpace(max_params=max_params)
    seed = sample_seed if sample_seed is not None else random.randrange(2**31)
    hyper = _hyperparameters(**hp)
    drawn = sample(ds.input_shape, ds.num_classes, count, seed=seed, space=space)
    proposals = [Proposal(arch, hyper, "sampled", extra={"sampler_seed": seed, "index": i})
                 for i, (arch, _) in enumerate(drawn)]
    ids = propose(ctx.store, ds, proposals)
    ctx.project()
    for model_id in ids:
        click.echo(model_id)


# --- reading --------------------------------------------------------------------------------


def model_rows(ctx: Context, where: str = "true", args: tuple[Any, ...] = (),
               limit: int | None = None) -> list[dict[str, Any]]:
    sql = (
        "select id, glyph, origin, params, flops, status, epochs_trained as epochs, "
        f"best_val_acc as val_acc, test_acc from models where {where} "
        "order by (regexp_replace(id, '\\D', '', 'g'))::bigint"
    )
    if limit:
        sql += f" limit {int(limit)}"
    with ctx.db.connect(dict_rows=True) as conn:
        return list(conn.execute(sql, args).fetchall())


@click.command("models")
@click.option("--status", help="Only models with this status.")
@click.option("--dataset", "dataset_id", help="Only models on this dataset.")
@click.option("--limit", type=click.IntRange(min=1))
@format_option
@pass_ctx
def models_cmd(ctx: Context, status: str | None, dataset_id: str | None, limit: int | None,
               fmt: str) -> None:
    """List models: id, glyph, params, FLOPs, status, epochs, accuracies."""
    ctx.project()
    where, args = ["true"], []
    if status:
        where.append("status = %s")
        args.append(status)
    if dataset_id:
        where.append("dataset_id = %s")
        args.append(dataset_id)
    emit(model_rows(ctx, " and ".join(where), tuple(args), limit), MODEL_COLUMNS, fmt)


# --- training -------------------------------------------------------------------------------


def _epoch_printer() -> Any:
    def show(model_id: str, r: Any) -> None:
        console.print(f"  {model_id} epoch {r.epoch}: loss {r.train_loss:.3f}, "
                      f"val acc {r.val_acc:.3f} ({r.seconds:.1f}s)")
    return show


@click.command("worker")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), help="Default: cuda if available.")
@click.option("--once", is_flag=True, help="Train at most one job, then exit.")
@click.option("--max-jobs", type=click.IntRange(min=1), help="Exit after this many jobs.")
@click.option("--exit-when-idle", is_flag=True, help="Exit when no job is left to claim.")
@click.option("--lease-seconds", type=click.FloatRange(min=0.1, max=86400),
              help="Lease length (env NASDB_LEASE_SECONDS).")
@click.option("--name", help="Worker name (default host-pid-random).")
@pass_ctx
def worker_cmd(ctx: Context, device: str | None, once: bool, max_jobs: int | None,
               exit_when_idle: bool, lease_seconds: float | None, name: str | None) -> None:
    """Claim queued jobs and train them, appending every epoch (runs until stopped)."""
    from nasdb.trainers.worker import Worker

    worker = Worker(ctx.db, device=device, name=name, lease_seconds=lease_seconds,
                    log=lambda m: console.print(m), on_epoch=_epoch_printer())
    limit = 1 if once else max_jobs
    console.print(f"worker {worker.name} on {worker.device}: waiting for jobs")
    done = worker.run(limit, idle_exit=once or exit_when_idle)
    console.print(f"worker {worker.name}: {done} jobs trained")


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


def train_queue(ctx: Context, title: str) -> int:
    """Train every queued job in-process with a progress display; return how many completed."""
    from nasdb.trainers.worker import Worker

    with ctx.db.connect() as conn:
        row = conn.execute("select count(*) from jobs where state in ('queued', 'claimed')") \
            .fetchone()
    total = int(row[0]) if row else 0
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


@click.command("demo")
@click.option("--dataset", "kind", type=click.Choice(["auto", "digits", "fashion-mnist"]),
              default="auto", show_default=True,
              help="auto = Fashion-MNIST when Debian's files are installed, else digits.")
@click.option("--limit", type=int, default=6000, show_default=True,
              help="Fashion-MNIST training images to use (CPU-friendly).")
@click.option("--max-mflops", type=float, default=3.0, show_default=True,
              help="Largest forward cost per image of a sampled model (MFLOPs).")
@click.option("-n", "count", default=12, show_default=True, help="Sampled models.")
@click.option("--epochs", default=3, show_default=True)
@click.option("--no-serve", is_flag=True, help="Exit after the Pareto front.")
@click.option("--port", default=5006, show_default=True)
@pass_ctx
def demo(ctx: Context, kind: str, limit: int, max_mflops: float, count: int, epochs: int,
         no_serve: bool, port: int) -> None:
    """The main job end to end: dataset, initial population, training, Pareto front, UI."""
    from nasdb.search import Architecture, Hyperparameters, SearchSpace, count_flops, sample
    from nasdb.steer import Proposal, get_dataset, propose
    from nasdb.trainers.datasets import default_dataset
    from nasdb.trainers.registry import register_dataset

    start = time.perf_counter()
    console.print(f"[bold]nasdb demo[/] on {ctx.db.display_url}")
    spec = default_dataset() if kind == "auto" else None
    chosen = spec.kind if spec else kind
    with console.status(f"registering {chosen}"):
        dataset_id = register_dataset(ctx.store, chosen, None, spec.path if spec else None,
                                      0, limit if chosen == "fashion-mnist" else None)
    ctx.project()
    ds = get_dataset(ctx.db, dataset_id)
    console.print(f"dataset {dataset_id}: {ds.input_shape}, {ds.num_classes} classes")
    hyper = Hyperparameters.from_json({"epochs": epochs})
    # Oversample, then keep models cheap enough to train in seconds on a CPU.
    drawn = sample(ds.input_shape, ds.num_classes, count * 20, seed=int(time.time()),
                   space=SearchSpace.extended(max_params=300_000))
    unique = {a.to_json(): a for a, _ in reversed(drawn)}  # distinct architectures only
    cheap = [a for a in reversed(unique.values())
             if count_flops(a, ds.input_shape, ds.num_classes) <= max_mflops * 1e6]
    proposals = [Proposal(a, hyper, "sampled") for a in cheap[:count]]
    proposals.append(Proposal(Architecture(reference="cnn"), hyper, "reference"))
    ids = propose(ctx.store, ds, proposals)
    ctx.project()
    console.print(f"queued {len(ids)} models ({ids[0]}..{ids[-1]})")
    done = train_queue(ctx, "training")
    ctx.project()
    console.print(f"trained {done} models in {time.perf_counter() - start:.0f}s")
    show_pareto(ctx, dataset_id)
    if no_serve:
        return
    from nasdb.ui.app import serve

    console.print(f"serving the app on http://127.0.0.1:{port} (Ctrl-C to stop)")
    serve(ctx.db, port=port, show=False)


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

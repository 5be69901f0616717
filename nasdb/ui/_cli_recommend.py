"""``nasdb recommend``: fit the recommenders, ranked advice for a dataset, predicted accuracy.

``nasdb recommend --dataset d [--max-params 100k] [--class NAME] [--limit N]`` ranks models;
``nasdb recommend fit`` fits encoder, similarity and predictor on what is stored;
``nasdb recommend fit-encoder`` fits the encoder only; ``nasdb recommend predict --model m --dataset
d`` predicts one model's accuracy (and records it).
"""

from __future__ import annotations

import json
import re
import sys
import time
from typing import Any

import click
from rich.console import Console

from nasdb.ui._context import Context, format_option, pass_ctx
from nasdb.ui._output import emit

console = Console(stderr=True)

_SI = {"": 1, "k": 1_000, "m": 1_000_000, "g": 1_000_000_000}


class Count(click.ParamType):
    """A positive count with an optional SI suffix: 100k, 1.5M, 2G, 12000."""

    name = "count"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)\s*", str(value))
        if match is None:
            self.fail(f"{value!r} is not a count; use a number with an optional k, M or G "
                      "suffix (100k, 1.5M)", param, ctx)
        number = float(match.group(1)) * _SI[match.group(2).lower()]
        if number < 1:
            self.fail(f"{value!r} must be at least 1", param, ctx)
        return round(number)


def _progress(message: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {message}")


def _fitted_row(fitted: Any, seconds: float) -> dict[str, Any]:
    row = {**fitted.as_dict(), "seconds": round(seconds, 2)}
    if fitted.kind == "predictor":
        row["best"] = fitted.metrics.get("best")
        best = (fitted.metrics.get("scores") or [{}])[0]
        row["kendall"] = best.get("kendall")
        row["spearman"] = best.get("spearman")
    return row


FIT_COLUMNS = ["kind", "recommender_id", "training_rows", "data_fingerprint", "artifact", "seconds",
               "best", "kendall", "spearman"]


def _why(item: dict[str, Any]) -> str:
    return " ".join(f"{n['model_id']}({n['accuracy']:.3f})" for n in item["why"])


def _show(result: dict[str, Any], fmt: str) -> None:
    items = result["recommendations"]
    if fmt == "json":
        sys.stdout.write(json.dumps(result, indent=2, default=str) + "\n")
        return
    rows = [
        {
            **item,
            "interval": "" if item["interval"] is None else
            f"{item['interval'][0]:.3f}-{item['interval'][1]:.3f}",
            "hyperparameters": " ".join(
                f"{k}={item['hyperparameters'][k]}" for k in ("optimizer", "lr", "batch_size")
                if k in item["hyperparameters"]),
            "why": _why(item),
        }
        for item in items
    ]
    title = f"recommendations for {result['dataset']}"
    if result["mode"] == "transfer":
        title += f" (nothing trained yet: from the most similar dataset, {result['source_dataset']})"
    emit(rows, ["rank", "model_id", "glyph", "params", "accuracy", "source", "interval",
                "score_basis", "hyperparameters", "why"], fmt, title=title)


@click.group(invoke_without_command=True)
@click.option("--dataset", "dataset_id", help="Dataset to recommend models for.")
@click.option("--max-params", type=Count(), help="Largest parameter count (100k, 1M, ...).")
@click.option("--class", "classes", multiple=True, help="Rank by accuracy on this class (repeat).")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(min=1))
@click.option("--neighbours", default=3, show_default=True, type=click.IntRange(min=0),
              help="Nearest trained models shown as `why`.")
@format_option
@click.pass_context
def recommend(click_ctx: click.Context, dataset_id: str | None, max_params: int | None,
              classes: tuple[str, ...], limit: int, neighbours: int, fmt: str) -> None:
    """Ranked models for a dataset: measured or predicted accuracy, class metrics, and why.

    With a subcommand: fit the recommenders (fit, fit-encoder) or predict one model's accuracy.
    """
    if click_ctx.invoked_subcommand is not None:
        return
    if dataset_id is None:
        click.echo(click_ctx.get_help())
        click_ctx.exit(0)
    from nasdb.recommend import recommend_for

    ctx = click_ctx.find_object(Context)
    assert ctx is not None
    ctx.wait_projected()
    result = recommend_for(ctx.db, dataset_id, max_params=max_params, classes=classes,
                           limit=limit, neighbours=neighbours)
    _show(result, fmt)


@recommend.command("fit")
@click.option("--corpus", "n_corpus", default=2000, show_default=True, type=click.IntRange(min=1),
              help="Sampled architectures for the encoder (plus every stored one).")
@click.option("--encoder-epochs", default=8, show_default=True, type=click.IntRange(min=0))
@click.option("--sample-size", default=256, show_default=True, type=click.IntRange(min=2),
              help="Images per dataset for the similarity ranker.")
@click.option("--seed", default=0, show_default=True)
@format_option
@pass_ctx
def fit(ctx: Context, n_corpus: int, encoder_epochs: int, sample_size: int, seed: int,
        fmt: str) -> None:
    """Fit the encoder, the dataset similarity and the accuracy predictor on what is stored."""
    from nasdb.recommend import fit_encoder, fit_predictor, fit_similarity

    ctx.wait_projected()
    rows = []
    for step in (
        lambda: fit_encoder(ctx.db, n_corpus, seed=seed, epochs=encoder_epochs,
                            progress=_progress),
        lambda: fit_similarity(ctx.db, sample_size=sample_size, seed=seed, progress=_progress),
        lambda: fit_predictor(ctx.db, seed=seed, progress=_progress),
    ):
        started = time.monotonic()
        fitted = step()
        rows.append(_fitted_row(fitted, time.monotonic() - started))
        _progress(f"recorded {fitted.kind} {fitted.recommender_id} "
                  f"({fitted.training_rows} rows, {rows[-1]['seconds']} s)")
    emit(rows, FIT_COLUMNS, fmt)


@recommend.command("fit-encoder")
@click.option("--corpus", "n_corpus", default=2000, show_default=True, type=click.IntRange(min=1),
              help="Sampled architectures (plus every stored one).")
@click.option("--dim", default=32, show_default=True, type=click.IntRange(min=2))
@click.option("--epochs", default=8, show_default=True, type=click.IntRange(min=0))
@click.option("--seed", default=0, show_default=True)
@format_option
@pass_ctx
def fit_encoder_cmd(ctx: Context, n_corpus: int, dim: int, epochs: int, seed: int,
                    fmt: str) -> None:
    """Fit the architecture encoder on sampled architectures (no training needed)."""
    from nasdb.recommend import fit_encoder

    ctx.wait_projected()
    started = time.monotonic()
    fitted = fit_encoder(ctx.db, n_corpus, seed=seed, dim=dim, epochs=epochs, progress=_progress)
    emit([_fitted_row(fitted, time.monotonic() - started)], FIT_COLUMNS[:6], fmt)


@recommend.command("predict")
@click.option("--model", "model_id", required=True, help="Model id (e.g. m123).")
@click.option("--dataset", "dataset_id", help="Dataset (default: the model's own).")
@click.option("--no-record", is_flag=True, help="Do not append AccuracyPredicted.")
@format_option
@pass_ctx
def predict(ctx: Context, model_id: str, dataset_id: str | None, no_record: bool,
            fmt: str) -> None:
    """Predicted test accuracy of a model, with a 90 % interval (recorded as AccuracyPredicted)."""
    from nasdb.recommend import predict_model

    ctx.wait_projected()
    result = predict_model(ctx.db, model_id, dataset_id, record=not no_record)
    if result["recorded"]:
        ctx.wait_projected()
    emit([result], ["model_id", "dataset", "predicted_acc", "lower", "upper", "measured_acc",
                    "regressor", "recommender_id", "recorded"], fmt)


def register(cli: click.Group) -> None:
    cli.add_command(recommend)

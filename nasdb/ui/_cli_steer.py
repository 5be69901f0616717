"""Steering commands: ablate, vary, handcraft, children, pin/unpin, tag, note, cancel, priority.

Each one appends events (the actor is recorded by the store) and prints what it did: the new
model ids with their changes, or one confirmation line. Bad requests raise `NasdbError`
subclasses, which the CLI prints as one ``error: ...`` line.
"""

from __future__ import annotations

import json
import re
from typing import Any

import click

from nasdb.schema.errors import InvalidArchitecture, InvalidRequest
from nasdb.ui._context import Context, format_option, pass_ctx
from nasdb.ui._output import emit

CHILD_COLUMNS = (
    "id", "origin", "changes", "params", "params_delta", "val_acc", "acc", "acc_delta",
    "train_seconds", "status",
)


# --- helpers --------------------------------------------------------------------------------


def _parse_indices(text: str | None, flag: str) -> list[int] | None:
    if text is None:
        return None
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            out.append(int(part))
        except ValueError:
            raise InvalidRequest(
                f"{flag} takes layer indices separated by commas (e.g. 0,2), got {part!r}"
            ) from None
    return out


def _parse_only(values: tuple[str, ...]) -> dict[int, set[str]] | None:
    """``--only 2:reparameterize,replace`` (repeatable) -> {2: {"reparameterize", "replace"}}."""
    if not values:
        return None
    out: dict[int, set[str]] = {}
    for value in values:
        index, sep, kinds = value.partition(":")
        try:
            position = int(index)
        except ValueError:
            position = -1
        if not sep or position < 0:
            raise InvalidRequest(
                f"--only takes INDEX:KIND[,KIND] (e.g. 2:reparameterize,replace), got {value!r}"
            )
        out.setdefault(position, set()).update(k.strip() for k in kinds.split(",") if k.strip())
    return out


def _parent(ctx: Context, model_id: str) -> tuple[Any, Any, Any, Any]:
    """The parent's row, architecture, hyperparameters and dataset (read models brought up to date)."""
    from nasdb.read import get_dataset, get_model
    from nasdb.search import Architecture, Hyperparameters

    ctx.wait_projected()
    row = get_model(ctx.db, model_id)
    arch = Architecture.from_json(row.architecture)
    hp = Hyperparameters.from_json(row.hyperparameters)
    dataset = get_dataset(ctx.db, row.dataset_id)
    return row, arch, hp, dataset


def _training(hp: Any, epochs: int | None) -> Any:
    from dataclasses import replace

    if epochs is None:
        return hp
    if epochs < 1:
        raise InvalidRequest(f"--epochs must be at least 1, got {epochs}")
    return replace(hp, epochs=epochs)


def _print_new(ids: list[str], changes: list[list[str]]) -> None:
    for model_id, change in zip(ids, changes, strict=True):
        click.echo(f"{model_id}\t{'; '.join(change)}")


queue_options = [
    click.option("--epochs", type=int, default=None, help="Train the new models for N epochs "
                 "(default: the parent's)."),
    click.option("--priority", type=int, default=0, show_default=True,
                 help="Queue priority (higher is claimed first)."),
    click.option("--no-queue", is_flag=True, help="Propose only; do not queue for training."),
]


def _with_queue_options(fn: Any) -> Any:
    for option in reversed(queue_options):
        fn = option(fn)
    return fn


# --- generators -----------------------------------------------------------------------------


@click.command()
@click.argument("model")
@click.option("--layers", help="Only these layer indices, e.g. 0,2 (default: every layer).")
@_with_queue_options
@pass_ctx
def ablate(ctx: Context, model: str, layers: str | None, epochs: int | None, priority: int,
           no_queue: bool) -> None:
    """One child of MODEL per removed layer; invalid children are skipped with the reason."""
    from nasdb.search import ablations
    from nasdb.steer import Proposal, propose

    _, arch, hp, dataset = _parent(ctx, model)
    children, skipped = ablations(arch, dataset.input_shape, dataset.num_classes,
                                  _parse_indices(layers, "--layers"))
    hp = _training(hp, epochs)
    proposals = [Proposal(child, hp, "ablation", parent_id=model, changes=(change,))
                 for child, change in children]
    ids = propose(ctx.store, dataset, proposals, queue=not no_queue, priority=priority)
    _print_new(ids, [[change] for _, change in children])
    for index, reason in skipped:
        click.echo(f"skipped layer {index}: {reason}")
    if not ids:
        click.echo("no valid ablation: nothing was proposed")


@click.command()
@click.argument("model")
@click.option("-n", "n", type=int, default=5, show_default=True, help="How many children.")
@click.option("--changes", type=int, default=3, show_default=True,
              help="Random changes per child (1..k).")
@click.option("--freeze", help="Layer indices that must not change, e.g. 0,1.")
@click.option("--only", multiple=True, help="INDEX:KIND[,KIND]: only these positions may change, "
              "with these kinds (replace, reparameterize, remove, prepend). Repeatable.")
@click.option("--seed", type=int, default=None, help="Random seed (default: fresh).")
@_with_queue_options
@pass_ctx
def vary(ctx: Context, model: str, n: int, changes: int, freeze: str | None,
         only: tuple[str, ...], seed: int | None, epochs: int | None, priority: int,
         no_queue: bool) -> None:
    """N distinct valid children of MODEL with random changes each."""
    from nasdb.search import variations
    from nasdb.steer import Proposal, propose

    _, arch, hp, dataset = _parent(ctx, model)
    frozen = _parse_indices(freeze, "--freeze")
    children = variations(arch, dataset.input_shape, dataset.num_classes, n=n, changes=changes,
                          seed=seed, constraints=_parse_only(only),
                          frozen=set(frozen) if frozen is not None else None)
    hp = _training(hp, epochs)
    proposals = [Proposal(child, hp, "variation", parent_id=model, changes=tuple(texts))
                 for child, texts in children]
    ids = propose(ctx.store, dataset, proposals, queue=not no_queue, priority=priority)
    _print_new(ids, [texts for _, texts in children])


_EDIT = re.compile(r"\s*(?P<op>add|prepend|remove|replace|reparameterize|set)\s+(?P<index>-?\d+)"
                   r"(?:\s+(?P<rest>.+))?\s*$")


def parse_edit(text: str) -> dict[str, Any]:
    """``add 2 Conv2D(filters=32, kernel=3)``, ``remove 4``, ``replace 1 Dense(units=64)``,
    ``set 0 filters=64`` -> the edit dict `nasdb.search.handcraft` takes."""
    from nasdb.search import parse_layer

    match = _EDIT.fullmatch(text)
    if match is None:
        raise InvalidRequest(
            f"cannot read edit {text!r}; write 'add I LAYER', 'remove I', 'replace I LAYER' or "
            "'set I PARAM=VALUE' (e.g. add 2 Conv2D(filters=32, kernel=3))"
        )
    op, index, rest = match["op"], int(match["index"]), match["rest"]
    if op == "remove":
        if rest:
            raise InvalidRequest(f"edit {text!r}: remove takes only an index")
        return {"op": "remove", "index": index}
    if not rest:
        what = "PARAM=VALUE" if op in ("set", "reparameterize") else "layer"
        raise InvalidRequest(f"edit {text!r} needs a {what}")
    if op in ("set", "reparameterize"):
        param, sep, value = rest.partition("=")
        if not sep:
            raise InvalidRequest(f"edit {text!r}: write set I PARAM=VALUE")
        try:
            parsed: Any = json.loads(value)
        except json.JSONDecodeError:
            parsed = value.strip()
        return {"op": "reparameterize", "index": index, "param": param.strip(), "value": parsed}
    return {"op": "add" if op == "prepend" else op, "index": index, "layer": parse_layer(rest)}


@click.command()
@click.argument("parent")
@click.option("--layers", "layers_json", help="The child's architecture JSON, written from "
              'scratch: {"layers": [...]} or just the list.')
@click.option("--edit", "edits", multiple=True, help="An edit of the parent's layer list "
              "(indices refer to the parent): 'add 2 Conv2D(filters=32, kernel=3)', 'remove 4', "
              "'replace 1 Dense(units=64)', 'set 0 filters=64'. Repeatable.")
@click.option("--study", default=None, help="Add the model to this study (e.g. to an "
              "evolution study's population).")
@_with_queue_options
@pass_ctx
def handcraft(ctx: Context, parent: str, layers_json: str | None, edits: tuple[str, ...],
              study: str | None, epochs: int | None, priority: int, no_queue: bool) -> None:
    """A hand-made child of PARENT: its layer list edited, or written from scratch."""
    from nasdb.search import Architecture, diff, infer_shapes
    from nasdb.search import handcraft as handcraft_arch
    from nasdb.steer import Proposal, propose

    if (layers_json is None) == (not edits):
        raise InvalidRequest("give either --layers JSON or one or more --edit, not both")
    _, arch, hp, dataset = _parent(ctx, parent)
    if study is not None:
        from nasdb.read import get_study

        get_study(ctx.db, study)
    if layers_json is not None:
        try:
            data = json.loads(layers_json)
        except json.JSONDecodeError as e:
            raise InvalidArchitecture(f"--layers is not valid JSON: {e}") from e
        child = Architecture.from_json({"layers": data} if isinstance(data, list) else data)
        infer_shapes(child, dataset.input_shape, dataset.num_classes)
        changes = diff(arch, child)
    else:
        child, changes = handcraft_arch(arch, [parse_edit(e) for e in edits],
                                        input_shape=dataset.input_shape,
                                        num_classes=dataset.num_classes)
    if child == arch:
        raise InvalidRequest(f"the handcrafted model is identical to its parent {parent}")
    proposal = Proposal(child, _training(hp, epochs), "handcrafted", parent_id=parent,
                        changes=tuple(changes))
    ids = propose(ctx.store, dataset, [proposal], study_id=study, queue=not no_queue,
                  priority=priority)
    _print_new(ids, [changes])


# --- the children table ---------------------------------------------------------------------


def children_rows(db: Any, model_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """REMAP's comparison table: the parent's row and one row per child with deltas.

    ``acc`` is the test accuracy (None until trained), ``val_acc`` the best validation accuracy
    so far; the deltas are child minus parent (None when either side is unknown).
    """
    from nasdb.read import get_model, list_models

    parent = get_model(db, model_id)
    parent_acc = parent.acc
    out = []
    for r in list_models(db, parent_id=model_id):
        a = r.acc
        out.append({
            "id": r.id,
            "origin": r.origin,
            "changes": list(r.changes or []),
            "params": r.params,
            "params_delta": r.params - parent.params,
            "val_acc": r.val_acc,
            "acc": a,
            "acc_delta": a - parent_acc if a is not None and parent_acc is not None else None,
            "train_seconds": r.train_seconds,
            "status": r.status,
        })
    parent_row = {"id": parent.id, "origin": parent.origin, "changes": [],
                  "params": parent.params, "params_delta": 0,
                  "val_acc": parent.val_acc, "acc": parent_acc,
                  "acc_delta": 0.0 if parent_acc is not None else None,
                  "train_seconds": parent.train_seconds, "status": parent.status}
    return parent_row, out


@click.command()
@click.argument("model")
@format_option
@pass_ctx
def children(ctx: Context, model: str, fmt: str) -> None:
    """Compare MODEL's children with it: changes, params and accuracy with their deltas."""
    ctx.wait_projected()
    parent, rows = children_rows(ctx.db, model)
    if fmt == "table":
        acc = f"{parent['acc']:.4f}" if parent["acc"] is not None else "not trained"
        rows = [{**r, "changes": "; ".join(r["changes"])} for r in rows]
        emit(rows, CHILD_COLUMNS, fmt,
             title=f"children of {model} ({parent['params']} params, acc {acc}, "
                   f"{parent['status']})")
    else:
        emit(rows, CHILD_COLUMNS, fmt)


# --- the model drawer and the queue ---------------------------------------------------------


@click.command()
@click.argument("model")
@pass_ctx
def pin(ctx: Context, model: str) -> None:
    """Pin MODEL to the drawer."""
    from nasdb.steer import pin as pin_model

    pin_model(ctx.store, model)
    click.echo(f"pinned {model}")


@click.command()
@click.argument("model")
@pass_ctx
def unpin(ctx: Context, model: str) -> None:
    """Unpin MODEL."""
    from nasdb.steer import pin as pin_model

    pin_model(ctx.store, model, pinned=False)
    click.echo(f"unpinned {model}")


@click.command()
@click.argument("model")
@click.argument("name")
@click.option("--remove", is_flag=True, help="Remove the tag instead.")
@pass_ctx
def tag(ctx: Context, model: str, name: str, remove: bool) -> None:
    """Tag MODEL with NAME (or remove the tag)."""
    from nasdb.steer import tag as tag_model

    tag_model(ctx.store, model, name, remove=remove)
    click.echo(f"{'untagged' if remove else 'tagged'} {model} {name}")


@click.command()
@click.argument("model")
@click.argument("text")
@pass_ctx
def note(ctx: Context, model: str, text: str) -> None:
    """Attach a note to MODEL."""
    from nasdb.steer import note as note_model

    if not text.strip():
        raise InvalidRequest("a note needs some text")
    note_model(ctx.store, model, text)
    click.echo(f"noted {model}")


@click.command()
@click.argument("model")
@click.option("--reason", default="", help="Why (kept in the event).")
@pass_ctx
def cancel(ctx: Context, model: str, reason: str) -> None:
    """Cancel MODEL's queued or running job (a running one stops at its next epoch)."""
    from nasdb.steer import cancel as cancel_model

    ctx.wait_projected()
    cancel_model(ctx.store, model, reason)
    click.echo(f"cancelled {model}")


@click.command()
@click.argument("model")
@click.argument("value", type=int)
@pass_ctx
def priority(ctx: Context, model: str, value: int) -> None:
    """Set MODEL's queue priority to VALUE (higher is claimed first)."""
    from nasdb.steer import set_priority

    set_priority(ctx.store, model, value)
    click.echo(f"priority of {model} is {value}")


def register(cli: click.Group) -> None:
    for command in (ablate, vary, handcraft, children, pin, unpin, tag, note, cancel, priority):
        cli.add_command(command)

"""The steering and study commands as a person types them (in-process, real database)."""

from __future__ import annotations

import json
from collections.abc import Callable

from nasdb.ingest import EventStore, Projector
from nasdb.search import Architecture, replay

from .conftest import Result, add_parent, train_all


def _ids(out: str) -> list[str]:
    return [line.split("\t")[0] for line in out.splitlines() if line.startswith("m")]


def test_ablate_vary_handcraft_and_the_children_table(
    store: EventStore, nasdb: Callable[..., Result]
) -> None:
    db = store.db
    parent = add_parent(store)
    out = nasdb("ablate", parent, "--layers", "0,2")
    assert out.code == 0, out.err
    ablated = _ids(out.out)
    assert out.out.splitlines() == [f"{ablated[0]}\tremoved Conv2D at index 0",
                                    f"{ablated[1]}\tremoved MaxPool2D at index 2"]
    everything = nasdb("ablate", parent, "--no-queue")
    assert len(_ids(everything.out)) == 4

    varied = nasdb("vary", parent, "-n", "3", "--changes", "2", "--freeze", "0", "--seed", "1")
    assert varied.code == 0, varied.err
    vary_ids = _ids(varied.out)
    assert len(vary_ids) == 3
    parent_arch = Architecture.from_json(json.dumps({"layers": [
        {"type": "Conv2D", "filters": 16, "kernel": 3}, {"type": "Activation", "fn": "relu"},
        {"type": "MaxPool2D", "size": 2, "stride": 2}, {"type": "Dense", "units": 32}]}))
    Projector(db).catch_up()
    with db.connect() as conn:
        for mid in vary_ids:
            changes, arch = conn.execute("select changes, architecture from models where id = %s",
                                         (mid,)).fetchone()
            assert len(changes) == 2 and not any("index 0 " in c for c in changes)
            assert replay(parent_arch, changes) == Architecture.from_json(arch)

    edited = nasdb("handcraft", parent, "--edit", "add 2 Conv2D(filters=32, kernel=3)",
                   "--edit", "remove 3", "--epochs", "1")
    assert edited.code == 0, edited.err
    (hand,) = _ids(edited.out)
    assert edited.out.strip() == (f"{hand}\tprepended Conv2D(filters=32, kernel=3, stride=1, "
                                  "padding=valid) before "
                                  "index 2; removed Dense at index 3")
    scratch = nasdb("handcraft", parent, "--layers",
                    '[{"type": "Conv2D", "filters": 8, "kernel": 3}, {"type": "Dense", '
                    '"units": 32}]')
    assert scratch.code == 0, scratch.err
    assert scratch.out.split("\t")[1].strip() == (
        "changed filters of Conv2D at index 0 from 16 to 8; removed Activation at index 1; "
        "removed MaxPool2D at index 2")

    assert nasdb("cancel", vary_ids[0]).out.strip() == f"cancelled {vary_ids[0]}"
    assert nasdb("priority", ablated[0], "5").out.strip() == f"priority of {ablated[0]} is 5"
    train_all(db)
    table = json.loads(nasdb("children", parent, "--format", "json").out)
    Projector(db).catch_up()
    with db.connect(dict_rows=True) as conn:
        p = conn.execute("select * from models where id = %s", (parent,)).fetchone()
        rows = {r["id"]: r for r in conn.execute("select * from models where parent_id = %s",
                                                 (parent,)).fetchall()}
    assert [r["id"] for r in table] == sorted(rows, key=lambda i: int(i[1:]))
    for r in table:
        m = rows[r["id"]]
        assert r["origin"] == m["origin"] and r["changes"] == m["changes"]
        assert r["params_delta"] == m["params"] - p["params"]
        assert r["status"] == m["status"]
        if m["status"] == "done":
            assert r["acc"] == m["test_acc"]
            assert abs(r["acc_delta"] - (m["test_acc"] - p["test_acc"])) < 1e-12
            assert r["train_seconds"] == m["train_seconds"]
    statuses = {r["id"]: r["status"] for r in table}
    assert statuses[vary_ids[0]] == "cancelled"
    assert statuses[ablated[0]] == "done"
    assert {r["origin"] for r in table} == {"ablation", "variation", "handcrafted"}
    human = nasdb("children", parent)
    assert f"children of {parent} (" in human.out and "origin" in human.out


def test_drawer_commands(store: EventStore, nasdb: Callable[..., Result]) -> None:
    model = add_parent(store)
    assert nasdb("pin", model).out.strip() == f"pinned {model}"
    assert nasdb("tag", model, "baseline").out.strip() == f"tagged {model} baseline"
    assert nasdb("note", model, "try wider convs").out.strip() == f"noted {model}"
    Projector(store.db).catch_up()
    with store.db.connect() as conn:
        row = conn.execute("select pinned, tags, notes_count from models where id = %s",
                           (model,)).fetchone()
    assert row == (True, ["baseline"], 1)
    nasdb("unpin", model)
    nasdb("tag", model, "baseline", "--remove")
    Projector(store.db).catch_up()
    with store.db.connect() as conn:
        row = conn.execute("select pinned, tags from models where id = %s", (model,)).fetchone()
    assert row == (False, [])
    actors = {e.metadata.get("actor") for e in store.read_stream(f"model-{model}")}
    assert None not in actors


def test_bad_steering_requests_are_one_line(store: EventStore,
                                            nasdb: Callable[..., Result]) -> None:
    parent = add_parent(store)
    cases = [
        (("ablate", "m99"), "error: no model 'm99'; see: nasdb models"),
        (("ablate", parent, "--layers", "0,7"),
         "error: layer index 7 is out of range: the parent has 4 layers, so indices are 0..3"),
        (("ablate", parent, "--layers", "zero"),
         "error: --layers takes layer indices separated by commas (e.g. 0,2), got 'zero'"),
        (("vary", parent, "--freeze", "0", "--only", "0:replace"),
         "error: layer 0 is frozen and cannot be changed; unfreeze it or leave it out of the "
         "allowed changes"),
        (("vary", parent, "--only", "9:replace"),
         "error: layer index 9 is out of range: the parent has 4 layers, so indices are 0..4 "
         "(4 is the position just before the head)"),
        (("vary", parent, "-n", "0"), "error: n must be a positive integer, got 0"),
        (("handcraft", parent, "--edit", "remove 9"),
         "error: layer index 9 is out of range: the parent has 4 layers (indices 0..3)"),
        (("handcraft", parent, "--edit", "explode 1"),
         "error: cannot read edit 'explode 1'; write 'add I LAYER', 'remove I', 'replace I "
         "LAYER' or 'set I PARAM=VALUE' (e.g. add 2 Conv2D(filters=32, kernel=3))"),
        (("handcraft", parent, "--layers", json.dumps([
            {"type": "Conv2D", "filters": 16, "kernel": 3},
            {"type": "Activation", "fn": "relu"},
            {"type": "MaxPool2D", "size": 2, "stride": 2},
            {"type": "Dense", "units": 32}])),
         f"error: the handcrafted model is identical to its parent {parent}"),
        (("handcraft", parent), "error: give either --layers JSON or one or more --edit, not "
                                "both"),
        (("cancel", parent), f"error: model {parent} is done; only queued or training models "
                             "can be cancelled"),
        (("pin", "m404"), "error: no model 'm404'; see: nasdb models"),
    ]
    train_all(store.db)
    before = store.last_position()
    for args, message in cases:
        out = nasdb(*args)
        assert out.code == 2, (args, out)
        assert out.err.strip() == message, args
        assert out.out == ""
    assert store.last_position() == before  # nothing appended by a bad request


def test_study_commands(store: EventStore, nasdb: Callable[..., Result]) -> None:
    created = nasdb("study", "create", "--dataset", "digits", "--strategy", "evolution",
                    "--budget-models", "4", "--epochs", "1", "--max-params", "20000",
                    "--set", "population=2", "--set", "sample=1", "--name", "evo")
    assert created.code == 0, created.err
    assert created.out.strip() == "evo"
    assert nasdb("study", "pause", "evo").out.strip() == "paused evo"
    assert nasdb("study", "resume", "evo").out.strip() == "resumed evo"
    ran = nasdb("study", "run", "evo")
    assert ran.code == 0, ran.err
    assert "step 1: proposed" in ran.out and ran.out.strip().endswith("study evo: done")
    status = json.loads(nasdb("study", "status", "evo", "--format", "json").out)[0]
    assert status["state"] == "done" and status["models"] == 4
    assert status["budget"] == {"models": {"used": 4.0, "limit": 4}}
    assert status["models_by_status"] == {"done": 4}
    assert status["best"]["model_id"].startswith("m")
    assert status["objectives"] == ["val_acc", "params"]
    with store.db.connect(dict_rows=True) as conn:  # acc is test accuracy, val_acc validation
        best = conn.execute("select * from models where id = %s",
                            (status["best"]["model_id"],)).fetchone()
    assert (status["best"]["val_acc"], status["best"]["acc"]) == (best["best_val_acc"],
                                                                   best["test_acc"])
    table = nasdb("study", "status", "evo").out
    assert "val_acc" in table and "test_acc" not in table
    bad = [
        (("study", "create", "--dataset", "digits", "--strategy", "grid", "--budget-models",
          "3"), "error: unknown strategy 'grid' (did you mean 'guided'?); choose one of random, "
                "evolution, hyperband, asha, pbt, tpe, nsga2, bohb, guided"),
        (("study", "create", "--dataset", "digits", "--strategy", "random", "--budget-epochs",
          "0"), "error: a budget of 0 epochs is not possible: the budget must be a positive "
                "integer (--budget-epochs N)"),
        (("study", "status", "ev"), "error: no study 'ev' (did you mean 'evo'?); studies: evo. "
                                    "Create one with: nasdb study create --dataset NAME "
                                    "--strategy random --budget-models 10"),
        (("study", "pause", "evo"), "error: study evo is done; it cannot be paused"),
    ]
    for args, message in bad:
        out = nasdb(*args)
        assert out.code == 2, (args, out)
        assert out.err.strip() == message


def test_study_importance_single_pairwise_and_marginals(
    store: EventStore, nasdb: Callable[..., Result]
) -> None:
    created = nasdb("study", "create", "--dataset", "digits", "--strategy", "tpe",
                    "--budget-models", "8", "--epochs", "1", "--max-params", "20000",
                    "--set", "startup=8", "--set", "parallel=4", "--name", "imp",
                    "--space", json.dumps({"architecture": {"filters": [8, 16],
                                                            "units": [16, 32]},
                                           "max_blocks": 2}))
    assert created.code == 0, created.err
    too_early = nasdb("study", "importance", "imp")
    assert too_early.err.strip() == ("error: study imp has 0 trained models with a value for "
                                     "val_acc; importance needs at least 4 (run the study further: "
                                     "nasdb study run imp)")
    assert nasdb("study", "run", "imp").code == 0
    out = nasdb("study", "importance", "imp", "--format", "json")
    assert out.code == 0, out.err
    result = json.loads(out.out)
    assert result["objective"] == "val_acc" and result["trials"] == 8
    fanova = [r["fanova"] for r in result["single"]]
    assert all(0 <= f <= 1 for f in fanova) and fanova == sorted(fanova, reverse=True)
    assert any(r["ped_anova"] is not None for r in result["single"])
    assert "lr" in {r["param"] for r in result["single"]}
    assert result["pairwise"] and all(len(p["params"]) == 2 for p in result["pairwise"])
    curve = result["marginals"]["lr"]
    assert sum(p["n"] for p in curve) == 8
    assert [p["x"] for p in curve] == sorted(p["x"] for p in curve)
    assert nasdb("study", "importance", "imp").code == 0

"""Issue 3's acceptance commands, run as a person runs them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from nasdb.schema import Database


def nasdb(url: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NASDB_DATABASE_URL": url}
    return subprocess.run([sys.executable, "-m", "nasdb.ui.cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


LAYERS = ('[{"type": "Conv2D", "filters": 8, "kernel": 3}, {"type": "Activation", "fn": "relu"},'
          ' {"type": "MaxPool2D", "size": 2, "stride": 2}]')


def test_dataset_train_sample_worker_models(db: Database) -> None:
    added = nasdb(db.url, "dataset", "add", "digits")
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("digits: digits 1x8x8, 10 classes, 1294/144/359")
    ref = nasdb(db.url, "train", "--dataset", "digits", "--reference", "cnn", "--epochs", "2")
    own = nasdb(db.url, "train", "--dataset", "digits", "--layers", LAYERS, "--epochs", "2")
    sampled = nasdb(db.url, "sample", "--dataset", "digits", "-n", "5", "--epochs", "1")
    ids = [ref.stdout.strip(), own.stdout.strip(), *sampled.stdout.split()]
    assert ids == [f"m{i}" for i in range(1, 8)]
    worker = nasdb(db.url, "worker", "--max-jobs", "7")
    assert worker.returncode == 0, worker.stdout + worker.stderr
    assert "7 jobs trained" in worker.stderr
    models = json.loads(nasdb(db.url, "models", "--format", "json").stdout)
    assert [m["id"] for m in models] == ids
    for m in models:  # every job was trained to the end: nothing failed, nothing left over
        assert set(m) >= {"id", "glyph", "params", "flops", "status", "epochs", "val_acc",
                          "test_acc"}
        assert m["status"] == "done", m
        assert 0 <= m["test_acc"] <= 1 and m["epochs"] == (1 if m["id"] > "m2" else 2)
    assert models[0]["glyph"] == "cnn"
    assert models[1]["glyph"] == "C8k3-relu-P2-D10"
    assert models[1]["params"] == 8 * 9 + 8 + 8 * 3 * 3 * 10 + 10
    assert models[1]["status"] == "done" and models[1]["epochs"] == 2
    reproduced = nasdb(db.url, "reproduce", "m2")
    assert "(difference +0.0000); predictions identical" in reproduced.stdout


def test_bad_input_gets_one_clear_line(db: Database, tmp_path: object) -> None:
    nasdb(db.url, "dataset", "add", "digits")
    too_big = nasdb(db.url, "train", "--dataset", "digits", "--layers",
                    '[{"type": "Conv2D", "filters": 8, "kernel": 9}]')
    assert too_big.returncode == 2
    assert too_big.stderr == ("error: layer 0 (Conv2D k9) does not fit its input: kernel 9x9 is "
                              "larger than the 8x8 feature map (input 1x8x8)\n")
    unknown = nasdb(db.url, "train", "--dataset", "digts", "--reference", "cnn")
    assert unknown.stderr == ("error: dataset 'digts' is not registered (did you mean 'digits'?); "
                              "registered datasets: digits. Register one with: nasdb dataset add "
                              "NAME\n")
    ref = nasdb(db.url, "train", "--dataset", "digits", "--reference", "resnet50")
    assert ref.stderr == ("error: unknown reference classifier 'resnet50'; choose one of cnn, vgg, "
                          "alexnet, resnet18, densenet, mobilenet\n")
    bad_json = nasdb(db.url, "train", "--dataset", "digits", "--layers", "[{")
    assert bad_json.stderr.startswith("error: --layers is not valid JSON: ")
    missing = nasdb(db.url, "dataset", "add", "fashion-mnist", "--path", str(tmp_path))
    assert missing.returncode == 2
    assert missing.stderr.startswith("error: fashion-mnist: ")
    assert str(tmp_path) in missing.stderr and missing.stderr.count("\n") == 1
    assert nasdb(db.url, "reproduce", "m99").stderr == "error: no model 'm99'; see: nasdb models\n"


def test_demo_runs_end_to_end(db: Database) -> None:
    out = nasdb(db.url, "demo", "--dataset", "digits", "--budget-seconds", "8", "--no-serve")
    assert out.returncode == 0, out.stderr
    assert re.search(r"trained [1-9]\d* models in \d+s", out.stderr)
    assert "Pareto front" in out.stderr
    assert re.search(r"best found m\d+ CB\S+ \([\d,]+ params\): test acc 0\.\d{4} \([+-]0\.\d{4}\) "
                     r"vs logistic regression m1 \(650 params\) test acc 0\.\d{4}, same "
                     r"training images", " ".join(out.stderr.split())), out.stderr
    with db.connect() as conn:
        trained = conn.execute("select id, params, test_acc from models where status = 'done' "
                               "and dataset_id = 'digits'").fetchall()
    points = {mid: (params, acc) for mid, params, acc in trained}
    front = {i for i, (p, a) in points.items()
             if not any(q <= p and b >= a and (q, b) != (p, a) for q, b in points.values())}
    # The printed table is the Pareto front of the trained models, best accuracy first, each
    # row with that model's own parameters and accuracy.
    header = next(line for line in out.stdout.splitlines() if line.startswith("┃"))
    names = [c.strip() for c in header.strip("┃").split("┃")]
    rows = [dict(zip(names, (c.strip() for c in line.strip("│").split("│")), strict=True))
            for line in out.stdout.splitlines() if line.startswith("│")]
    assert front and [r["id"] for r in rows] == sorted(front, key=lambda i: -points[i][1])
    for row in rows:
        assert int(row["params"].replace(",", "")) == points[row["id"]][0]
        assert float(row["acc"]) == pytest.approx(points[row["id"]][1], rel=1e-3)

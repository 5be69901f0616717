# ruff: noqa: E501
"""Exact messages for malformed queries: one QuerySyntaxError, column, caret, what was expected."""

from __future__ import annotations

import pytest

from nasdb.query import Catalog, compile, parse
from nasdb.schema.errors import QuerySyntaxError

CATALOG = Catalog(
    classes={
        "cifar10": (
            "airplane",
            "automobile",
            "bird",
            "cat",
            "deer",
            "dog",
            "frog",
            "horse",
            "ship",
            "truck",
        )
    },
    studies=("fmnist-1",),
    datasets=("cifar10",),
)

FIELD_LIST = "valid fields: id, study, dataset, parent, origin, status, optimizer, tag, glyph, layers, params, flops, depth, epochs, epochs_planned, batch_size, lr, weight_decay, acc, test_acc, val_acc, last_val_acc, predicted_acc, loss, test_loss, val_loss, train_loss, latency, train_time, priority, notes, created, age, pinned, conv, maxpool, avgpool, pool, dropout, batchnorm, activation, dense, flatten, gap, convblock, sepconv, residual, block"

ERRORS: list[tuple[str, str]] = [
    (
        "params<<100k",
        "query error at column 8: expected a number after '<'"
        + "\n"
        + "  params<<100k"
        + "\n"
        + "         ^",
    ),
    (
        "pareto params<",
        "query error at column 15: expected a number after '<'"
        + "\n"
        + "  pareto params<"
        + "\n"
        + "                ^",
    ),
    (
        "class=",
        "query error at column 7: expected a class name after '='"
        + "\n"
        + "  class="
        + "\n"
        + "        ^",
    ),
    (
        "(params<100k or acc>0.9",
        "query error at column 1: unbalanced parentheses: this '(' is never closed; add a ')'"
        + "\n"
        + "  (params<100k or acc>0.9"
        + "\n"
        + "  ^",
    ),
    (
        "params<100k)",
        "query error at column 12: unbalanced parentheses: this ')' has no matching '('"
        + "\n"
        + "  params<100k)"
        + "\n"
        + "             ^",
    ),
    (
        "top by acc",
        "query error at column 5: expected a number after 'top', e.g. 'top 10 by acc'"
        + "\n"
        + "  top by acc"
        + "\n"
        + "      ^^",
    ),
    (
        "parms<100k",
        "query error at column 1: unknown field 'parms'; did you mean 'params'?"
        + "\n"
        + "  parms<100k"
        + "\n"
        + "  ^^^^^"
        + "\n"
        + FIELD_LIST,
    ),
    (
        "optimizer>3",
        "query error at column 1: optimizer is a text field; use = or != or in (...)"
        + "\n"
        + "  optimizer>3"
        + "\n"
        + "  ^^^^^^^^^^^",
    ),
    (
        "class=brid",
        "query error at column 7: unknown class 'brid' in dataset cifar10; did you mean 'bird'?"
        + "\n"
        + "  class=brid"
        + "\n"
        + "        ^^^^"
        + "\n"
        + "classes of dataset cifar10: airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck",
    ),
    (
        "status=trainig",
        "query error at column 8: unknown status 'trainig'; did you mean 'training'?"
        + "\n"
        + "  status=trainig"
        + "\n"
        + "         ^^^^^^^"
        + "\n"
        + "valid values of status: proposed, queued, training, done, failed, cancelled",
    ),
    (
        "params=abc",
        "query error at column 8: params is a number; expected a number such as 100k, not 'abc'"
        + "\n"
        + "  params=abc"
        + "\n"
        + "         ^^^",
    ),
    (
        "acc>90",
        "query error at column 5: acc is a fraction from 0 to 1; write 90% or 0.9"
        + "\n"
        + "  acc>90"
        + "\n"
        + "      ^^",
    ),
    (
        "latency<2h",
        "query error at column 9: latency does not take '2h': use a latency unit: us, ms or s, e.g. 2ms"
        + "\n"
        + "  latency<2h"
        + "\n"
        + "          ^^",
    ),
    (
        "created>2",
        "query error at column 9: created does not take '2': use a duration unit: s, min, h, d or w, e.g. 2h"
        + "\n"
        + "  created>2"
        + "\n"
        + "          ^",
    ),
    (
        "has:Conv3D",
        "query error at column 5: unknown layer type 'Conv3D'; did you mean 'Conv2D', 'conv' or 'SepConv'?"
        + "\n"
        + "  has:Conv3D"
        + "\n"
        + "      ^^^^^^"
        + "\n"
        + "layer types: Activation, AvgPool2D, BatchNorm, Conv2D, ConvBlock, Dense, Dropout, Flatten, GlobalAvgPool, MaxPool2D, Residual, SepConv",
    ),
    (
        "pareto acc",
        "query error at column 1: pareto needs two or more objectives, e.g. 'pareto acc latency' (or none for accuracy vs parameters)"
        + "\n"
        + "  pareto acc"
        + "\n"
        + "  ^^^^^^^^^^",
    ),
    (
        "pareto glyph params",
        "query error at column 8: glyph is not a number, so it cannot be a Pareto objective; use numeric fields such as acc, params, flops, latency"
        + "\n"
        + "  pareto glyph params"
        + "\n"
        + "         ^^^^^",
    ),
    (
        "top 5 by acc limit 3",
        "query error at column 14: 'limit' cannot be combined with 'top' ('top N' already limits the rows)"
        + "\n"
        + "  top 5 by acc limit 3"
        + "\n"
        + "               ^^^^^^^",
    ),
    (
        "limit 0",
        "query error at column 7: limit takes a whole number of rows, like 10 (not 0)"
        + "\n"
        + "  limit 0"
        + "\n"
        + "        ^",
    ),
    (
        "study=fmnist1",
        "query error at column 7: unknown study 'fmnist1'; did you mean 'fmnist-1'?"
        + "\n"
        + "  study=fmnist1"
        + "\n"
        + "        ^^^^^^^"
        + "\n"
        + "valid values of study: fmnist-1",
    ),
    (
        "max(val_ac)>0.9",
        "query error at column 1: unknown epoch metric 'val_ac'; did you mean 'val_acc'?"
        + "\n"
        + "  max(val_ac)>0.9"
        + "\n"
        + "  ^^^^^^^^^^^"
        + "\n"
        + "epoch metrics: val_acc, val_loss, train_acc, train_loss, acc, loss, lr, seconds",
    ),
    (
        'id="abc',
        'query error at column 4: this string is never closed; add the closing "'
        + "\n"
        + '  id="abc'
        + "\n"
        + "     ^",
    ),
    (
        "params<100k @",
        "query error at column 13: unexpected character '@'; values with spaces or symbols go in quotes, e.g. tag=\"v1 @ lab\""
        + "\n"
        + "  params<100k @"
        + "\n"
        + "              ^",
    ),
    (
        "bird",
        "query error at column 1: unknown field 'bird'; did you mean class=bird?"
        + "\n"
        + "  bird"
        + "\n"
        + "  ^^^^"
        + "\n"
        + FIELD_LIST,
    ),
    (
        "metric=recal class=cat",
        "query error at column 8: unknown class metric 'recal'; did you mean 'recall'?"
        + "\n"
        + "  metric=recal class=cat"
        + "\n"
        + "         ^^^^^"
        + "\n"
        + "class metrics: accuracy, precision, recall, specificity",
    ),
    (
        "layers=Conv2D",
        'query error at column 1: layers takes a regular expression; use ~, e.g. layers~"Conv2D.*Dense"'
        + "\n"
        + "  layers=Conv2D"
        + "\n"
        + "  ^^^^^^^^^^^^^",
    ),
    (
        "params in (1k, x)",
        "query error at column 16: params is a number; expected a number such as 100k, not 'x'"
        + "\n"
        + "  params in (1k, x)"
        + "\n"
        + "                 ^",
    ),
    (
        "top 5 by acc pareto",
        "query error at column 14: 'pareto' cannot be combined with 'top'"
        + "\n"
        + "  top 5 by acc pareto"
        + "\n"
        + "               ^^^^^^",
    ),
    (
        "group origin",
        "query error at column 7: expected 'by' after 'group', e.g. 'group by origin'"
        + "\n"
        + "  group origin"
        + "\n"
        + "        ^^^^^^",
    ),
    (
        "lineage",
        "query error at column 8: expected a model id after 'lineage', e.g. 'lineage m12'"
        + "\n"
        + "  lineage"
        + "\n"
        + "         ^",
    ),
    (
        "not",
        "query error at column 4: expected a filter after 'not', e.g. params<100k"
        + "\n"
        + "  not"
        + "\n"
        + "     ^",
    ),
    (
        "sort",
        "query error at column 5: expected a field name after 'sort', e.g. 'sort params asc'"
        + "\n"
        + "  sort"
        + "\n"
        + "      ^",
    ),
    (
        "max(",
        "query error at column 5: expected an epoch metric inside 'max(...)', e.g. max(val_acc)"
        + "\n"
        + "  max("
        + "\n"
        + "      ^",
    ),
    (
        "<5",
        "query error at column 1: expected a field name before '<', e.g. params<100k"
        + "\n"
        + "  <5"
        + "\n"
        + "  ^",
    ),
    (
        "class!=bird",
        "query error at column 1: class sets the class focus; write class=... (e.g. class=bird)"
        + "\n"
        + "  class!=bird"
        + "\n"
        + "  ^^^^^^^^^^^",
    ),
    (
        "not class=bird",
        "query error at column 5: class= sets the class focus and must stand on its own, not inside not, or, in or parentheses"
        + "\n"
        + "  not class=bird"
        + "\n"
        + "      ^^^^^^^^^^",
    ),
    (
        "limit 5 limit 6",
        "query error at column 9: 'limit' is given twice; a query takes one"
        + "\n"
        + "  limit 5 limit 6"
        + "\n"
        + "          ^^^^^^^",
    ),
    (
        "metric=recall",
        "query error at column 1: metric= needs a class focus, e.g. class=bird metric=recall"
        + "\n"
        + "  metric=recall"
        + "\n"
        + "  ^^^^^^^^^^^^^",
    ),
    (
        "a\nparams<<1",
        "query error at line 2, column 8: expected a number after '<'"
        + "\n"
        + "  params<<1"
        + "\n"
        + "         ^",
    ),
]


@pytest.mark.parametrize(("text", "message"), ERRORS, ids=[e[0] for e in ERRORS])
def test_exact_message(text: str, message: str) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        compile(parse(text), CATALOG)
    assert str(info.value) == message
    assert info.value.text == text
    assert info.value.column == int(message.split("column ")[1].split(":")[0])
    assert info.value.__cause__ is None  # no Lark exception chained into the traceback

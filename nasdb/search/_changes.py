"""Edits of a parent's layer list: `Change`, `apply_changes`, `handcraft` and `diff`.

Every index in a change refers to the PARENT's layers. Index ``len(parent.layers)`` is the virtual
position just before the head, which can only be prepended to. The text of a change is what the
UI and the ``changes`` column show, and it is precise enough to replay.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

from nasdb.schema.errors import InvalidArchitecture, InvalidRequest

from ._architecture import Architecture
from ._layers import Layer, _format_number, layer_from_dict
from ._shapes import infer_shapes

ChangeKind = Literal["prepend", "remove", "replace", "reparameterize"]
CHANGE_KINDS: tuple[str, ...] = ("replace", "reparameterize", "remove", "prepend")


def _value(value: Any) -> str:
    return _format_number(value) if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Change:
    """One edit at a parent index.

    - ``prepend``: insert ``layer`` before parent layer ``index`` (or before the head).
    - ``remove``: drop parent layer ``index`` (``old``).
    - ``replace``: put ``layer`` where ``old`` was.
    - ``reparameterize``: set ``param`` of ``old`` to ``value`` (``layer`` is the result).
    """

    kind: ChangeKind
    index: int
    old: Layer | None = None
    layer: Layer | None = None
    param: str | None = None
    value: Any = None

    def __str__(self) -> str:
        old = self.old.TYPE if self.old is not None else "?"
        if self.kind == "prepend":
            return f"prepended {self.layer} before index {self.index}"
        if self.kind == "remove":
            return f"removed {old} at index {self.index}"
        if self.kind == "replace":
            return f"replaced {old} at index {self.index} with {self.layer}"
        before = getattr(self.old, str(self.param), None)
        return (
            f"changed {self.param} of {old} at index {self.index} "
            f"from {_value(before)} to {_value(self.value)}"
        )


def prepend(parent: Architecture, index: int, layer: Layer) -> Change:
    return Change("prepend", index, None, layer)


def remove(parent: Architecture, index: int) -> Change:
    return Change("remove", index, _layer_at(parent, index))


def replace_layer(parent: Architecture, index: int, layer: Layer) -> Change:
    return Change("replace", index, _layer_at(parent, index), layer)


def reparameterize(parent: Architecture, index: int, param: str, value: Any) -> Change:
    """Set one hyperparameter of parent layer ``index``; raises if the name or value is bad."""
    old = _layer_at(parent, index)
    names = [f.name for f in fields(old)]
    if param not in names:
        raise InvalidRequest(
            f"layer {index} ({old.TYPE}) has no hyperparameter {param!r}"
            + (f"; it has {', '.join(names)}" if names else "")
        )
    try:
        new = replace(old, **{param: value})
    except InvalidArchitecture as e:
        raise InvalidRequest(f"layer {index} ({old.TYPE}): {e}") from e
    return Change("reparameterize", index, old, new, param, getattr(new, param))


def _layer_at(parent: Architecture, index: int) -> Layer:
    if not 0 <= index < len(parent.layers):
        raise InvalidRequest(
            f"layer index {index} is out of range: the parent has {len(parent.layers)} layers "
            f"(indices 0..{len(parent.layers) - 1})"
        )
    return parent.layers[index]


def apply_changes(parent: Architecture, changes: Sequence[Change]) -> Architecture:
    """The child the changes describe (indices into the parent, applied all at once).

    Several prepends at one index keep their order; a layer may be removed, replaced, or
    reparameterized (several distinct hyperparameters), not two of these. Raises `InvalidRequest`
    for a reference parent, an index out of range or conflicting changes. The child is not
    shape-checked here (see `infer_shapes`).
    """
    if parent.reference is not None:
        raise InvalidRequest(
            f"reference classifier {parent.reference!r} has no layer list to edit; "
            "start from a sampled or handcrafted model"
        )
    n = len(parent.layers)
    inserts: dict[int, list[Layer]] = {}
    edits: dict[int, Change] = {}
    current: dict[int, Layer | None] = {}
    for change in changes:
        if change.kind == "prepend":
            if not 0 <= change.index <= n or change.layer is None:
                raise InvalidRequest(
                    f"cannot prepend at index {change.index}: positions are 0..{n} "
                    f"({n} is just before the head)"
                )
            inserts.setdefault(change.index, []).append(change.layer)
            continue
        _layer_at(parent, change.index)
        earlier = edits.get(change.index)
        if earlier is not None and not (
            earlier.kind == change.kind == "reparameterize" and earlier.param != change.param
        ):
            raise InvalidRequest(
                f"conflicting changes at index {change.index}: {earlier} / {change}"
            )
        edits[change.index] = change
        if change.kind == "remove":
            current[change.index] = None
        elif change.kind == "replace":
            current[change.index] = change.layer
        elif change.kind == "reparameterize":
            base = current.get(change.index) or parent.layers[change.index]
            current[change.index] = replace(base, **{str(change.param): change.value})
        else:
            raise InvalidRequest(
                f"unknown change kind {change.kind!r}; use {', '.join(CHANGE_KINDS)}"
            )
    layers: list[Layer] = []
    for i in range(n + 1):
        layers.extend(inserts.get(i, ()))
        if i < n:
            layer = current[i] if i in current else parent.layers[i]
            if layer is not None:
                layers.append(layer)
    return Architecture(tuple(layers))


def _edit(parent: Architecture, edit: Change | Mapping[str, Any]) -> Change:
    if isinstance(edit, Change):
        return edit
    op = edit.get("op")
    index = edit.get("index")
    if isinstance(index, bool) or not isinstance(index, int):
        raise InvalidRequest(f"edit {dict(edit)!r} needs an integer index")
    if op in ("add", "prepend", "replace"):
        raw = edit.get("layer")
        try:
            layer = raw if not isinstance(raw, Mapping) else layer_from_dict(dict(raw), index)
        except InvalidArchitecture as e:
            raise InvalidRequest(str(e)) from e
        if layer is None or isinstance(layer, Mapping):
            raise InvalidRequest(f"edit {op!r} at index {index} needs a layer")
        if op == "replace":
            return replace_layer(parent, index, layer)
        return prepend(parent, index, layer)
    if op == "remove":
        return remove(parent, index)
    if op == "reparameterize":
        return reparameterize(parent, index, str(edit.get("param")), edit.get("value"))
    raise InvalidRequest(
        f"unknown edit op {op!r}; use add, remove, replace or reparameterize"
    )


def handcraft(
    parent: Architecture,
    edits: Sequence[Change | Mapping[str, Any]],
    *,
    input_shape: Sequence[int] | None = None,
    num_classes: int | None = None,
) -> tuple[Architecture, list[str]]:
    """Apply hand edits to a parent; returns the child and its change list.

    An edit is a `Change` or ``{"op": "add"|"remove"|"replace"|"reparameterize", "index": i,
    "layer": {...layer JSON...}, "param": name, "value": v}``; indices refer to the parent.
    With ``input_shape`` and ``num_classes`` the child is shape-checked (`InvalidArchitecture`).
    """
    changes = [_edit(parent, e) for e in edits]
    child = apply_changes(parent, changes)
    if input_shape is not None and num_classes is not None:
        infer_shapes(child, input_shape, num_classes)
    return child, [str(c) for c in changes]


def diff(parent: Architecture, child: Architecture) -> list[str]:
    """A readable layer diff in the language of `Change` (indices refer to the parent).

    Meant for a layer list written from scratch: aligned with difflib on each layer's text; a
    same-type pair differing in one hyperparameter is reported as a reparameterization, any other
    differing pair as a replacement. `replay` of the result on the parent gives the child.
    """
    if parent.reference is not None or child.reference is not None:
        if parent == child:
            return []
        return [f"replaced {parent} with {child}"]
    a = [str(layer) for layer in parent.layers]
    b = [str(layer) for layer in child.layers]
    out: list[str] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op != "equal":
            _diff_block(parent.layers[i1:i2], child.layers[j1:j2], i1, out)
    return out


def _diff_block(old: Sequence[Layer], new: Sequence[Layer], offset: int, out: list[str]) -> None:
    """Differing runs of layers, aligned a second time by layer type."""
    matcher = difflib.SequenceMatcher(
        a=[x.TYPE for x in old], b=[y.TYPE for y in new], autojunk=False
    )
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        pairs = min(i2 - i1, j2 - j1) if op in ("equal", "replace") else 0
        for k in range(pairs):
            before, after = old[i1 + k], new[j1 + k]
            index = offset + i1 + k
            changed = [
                f.name for f in fields(before)
                if before.TYPE == after.TYPE and getattr(before, f.name) != getattr(after, f.name)
            ]
            if len(changed) == 1:
                value = getattr(after, changed[0])
                out.append(str(Change("reparameterize", index, before, after, changed[0], value)))
            elif before != after:
                out.append(str(Change("replace", index, before, after)))
        for i in range(i1 + pairs, i2):
            out.append(str(Change("remove", offset + i, old[i])))
        for j in range(j1 + pairs, j2):
            out.append(str(Change("prepend", offset + i2, None, new[j])))


_CHANGE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("prepend", re.compile(r"prepended (?P<layer>.+) before index (?P<index>\d+)")),
    ("remove", re.compile(r"removed (?P<type>\w+) at index (?P<index>\d+)")),
    ("replace", re.compile(r"replaced (?P<type>\w+) at index (?P<index>\d+) with (?P<layer>.+)")),
    ("reparameterize", re.compile(
        r"changed (?P<param>\w+) of (?P<type>\w+) at index (?P<index>\d+) "
        r"from (?P<old>\S+) to (?P<value>\S+)"
    )),
)
_LAYER_TEXT = re.compile(r"(?P<type>\w+)(?:\((?P<args>.*)\))?")


def _scalar(text: str) -> Any:
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def parse_layer(text: str) -> Layer:
    """The inverse of ``str(layer)``: ``Dense(units=128)`` -> `Dense(128)`."""
    match = _LAYER_TEXT.fullmatch(text.strip())
    if match is None:
        raise InvalidRequest(f"cannot read layer {text!r}; write it like Dense(units=128)")
    data: dict[str, Any] = {"type": match["type"]}
    for part in filter(None, (match["args"] or "").split(",")):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise InvalidRequest(f"cannot read {part.strip()!r} in layer {text!r}; use name=value")
        data[key] = _scalar(value)
    try:
        return layer_from_dict(data, 0)
    except InvalidArchitecture as e:
        raise InvalidRequest(f"cannot read layer {text!r}: {e}") from e


def parse_change(parent: Architecture, text: str) -> Change:
    """The inverse of ``str(change)`` against the same parent; raises `InvalidRequest` when the
    text does not read as a change or names a layer type the parent does not have there."""
    for kind, pattern in _CHANGE_PATTERNS:
        match = pattern.fullmatch(text.strip())
        if match is None:
            continue
        index = int(match["index"])
        if kind == "prepend":
            return prepend(parent, index, parse_layer(match["layer"]))
        old = _layer_at(parent, index)
        if match["type"] != old.TYPE:
            raise InvalidRequest(
                f"change {text!r} names {match['type']} but the parent has {old.TYPE} at index "
                f"{index}"
            )
        if kind == "remove":
            return remove(parent, index)
        if kind == "replace":
            return replace_layer(parent, index, parse_layer(match["layer"]))
        return reparameterize(parent, index, match["param"], _scalar(match["value"]))
    raise InvalidRequest(f"cannot read change {text!r}")


def replay(parent: Architecture, changes: Sequence[str]) -> Architecture:
    """Rebuild a child from its parent and its recorded change list (e.g. to audit an event)."""
    return apply_changes(parent, [parse_change(parent, text) for text in changes])

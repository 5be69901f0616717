"""SNAC-like architecture glyphs (REMAP's Sequential Neural Architecture Chip) as HTML.

One chip per layer: colour and symbol by layer type, height by the log of the layer's output
tensor size, so a network that shrinks its feature maps visibly narrows. Pure functions.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

from nasdb.schema.errors import NasdbError
from nasdb.search import Architecture, Layer, infer_shapes

#: layer type -> (colour, symbol)
STYLE: dict[str, tuple[str, str]] = {
    "Conv2D": ("#3b6fb6", "C"),
    "MaxPool2D": ("#e39b2d", "▼"),
    "AvgPool2D": ("#e3c02d", "▽"),
    "Dropout": ("#9a9a9a", "◌"),
    "BatchNorm": ("#8c6bb1", "N"),
    "Activation": ("#4daf7c", "ƒ"),
    "Dense": ("#d9534f", "D"),
    "Flatten": ("#6c757d", "="),
    "GlobalAvgPool": ("#c77c2d", "G"),
    "ConvBlock": ("#1f4e8c", "B"),
    "SepConv": ("#2b8cbe", "S"),
    "Residual": ("#6a3d9a", "R"),
    "head": ("#7a1f1f", "D"),
}


def _size(shape: Sequence[int]) -> int:
    return max(1, math.prod(int(s) for s in shape))


def chips(arch: Architecture | dict[str, Any], input_shape: Sequence[int] | None,
          num_classes: int | None) -> list[dict[str, Any]]:
    """One dict per layer (type, label, colour, symbol, output size, head flag)."""
    a = arch if isinstance(arch, Architecture) else Architecture.from_json(arch)
    infos = None
    if input_shape is not None and num_classes is not None:
        try:
            infos = infer_shapes(a, input_shape, num_classes)
        except NasdbError:
            infos = None
    out: list[dict[str, Any]] = []
    if infos is None:
        for plain in a.layers:
            colour, symbol = STYLE.get(plain.TYPE, ("#444", "?"))
            out.append({"type": plain.TYPE, "label": str(plain), "code": plain.code(),
                        "colour": colour, "symbol": symbol, "size": None, "head": False})
        return out
    body = {i: layer for i, layer in enumerate(a.layers)}
    for info in infos:
        head = getattr(info, "head", False)
        layer: Layer | None = body.get(info.index) if not head else None
        kind = "head" if head and info.type == "Dense" else info.type
        colour, symbol = STYLE.get(kind, ("#444", "?"))
        out.append({"type": info.type, "label": str(layer) if layer is not None else info.type,
                    "code": layer.code() if layer is not None else info.type,
                    "colour": colour, "symbol": symbol, "size": _size(info.output_shape),
                    "shape": "x".join(str(s) for s in info.output_shape), "head": head})
    return out


def snac_html(arch: Architecture | dict[str, Any], input_shape: Sequence[int] | None = None,
              num_classes: int | None = None, *, scale: float = 1.0) -> str:
    """The glyph as an inline HTML strip (a tooltip on each chip names the layer and shape)."""
    try:
        items = chips(arch, input_shape, num_classes)
    except NasdbError as e:
        return f"<span class='snac-error'>{html.escape(str(e))}</span>"
    if not items:
        return "<span class='snac'>(reference classifier)</span>"
    sizes = [i["size"] for i in items if i["size"]]
    top = math.log10(max(sizes)) if sizes else 1.0
    parts = []
    for item in items:
        height = 26.0 if not item["size"] else 8 + 22 * math.log10(item["size"]) / max(top, 1e-9)
        height *= scale
        title = html.escape(f"{item['label']} -> {item.get('shape', '?')}")
        parts.append(
            f"<span class='snac-chip' title='{title}' style='display:inline-flex;"
            f"align-items:center;justify-content:center;width:{18 * scale:.0f}px;"
            f"height:{height:.0f}px;margin-right:2px;background:{item['colour']};color:white;"
            f"font:bold {11 * scale:.0f}px sans-serif;border-radius:3px;"
            f"{'outline:2px solid #333;' if item['head'] else ''}'>{item['symbol']}</span>"
        )
    return ("<div class='snac' style='display:flex;align-items:flex-end;height:"
            f"{32 * scale:.0f}px'>{''.join(parts)}</div>")


def legend_html() -> str:
    """The chip legend."""
    parts = [
        f"<span style='display:inline-flex;align-items:center;margin-right:10px'><span style='"
        f"display:inline-block;width:14px;height:14px;background:{c};color:white;font:bold 10px "
        f"sans-serif;text-align:center;border-radius:2px;margin-right:3px'>{s}</span>{k}</span>"
        for k, (c, s) in STYLE.items()
    ]
    return f"<div style='font-size:12px;color:#444'>{''.join(parts)}</div>"

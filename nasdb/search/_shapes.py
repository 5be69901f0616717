"""Shape inference, parameter and FLOP counts.

FLOP convention: one multiply-add is 2 FLOPs, and only Conv2D and Dense (including the head) are
counted — the convention of `torch.utils.flop_counter.FlopCounterMode`, which the tests compare
against. Bias additions, pooling, activations, batch norm and dropout count 0. Counts are per
single input image. Parameters are trainable parameters (BatchNorm's running statistics are
buffers, not parameters); both counts are exact for the module `nasdb.trainers.build` builds.
Reference classifiers are measured on their modules instead (`nasdb.trainers.measure`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nasdb.schema.errors import InvalidArchitecture, InvalidRequest

from ._architecture import Architecture
from ._layers import (
    Activation,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    ConvBlock,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool,
    Layer,
    MaxPool2D,
    Residual,
    SepConv,
)

Shape = tuple[int, ...]


@dataclass(frozen=True)
class LayerInfo:
    """What shape inference found for one layer.

    ``index`` is the body index; the head's layers have ``index == len(layers)`` and
    ``head=True``. ``input_shape``/``output_shape`` are (C, H, W) or (features,).
    A reference classifier is reported as one row whose ``type`` is its name.
    """

    index: int
    type: str
    input_shape: Shape
    output_shape: Shape
    params: int
    flops: int
    head: bool = False


def _dims(shape: Shape) -> str:
    return "x".join(str(d) for d in shape)


def check_input_shape(input_shape: Sequence[int], num_classes: int) -> Shape:
    """Validate (C, H, W) and the class count; raises `InvalidRequest`."""
    shape = tuple(input_shape)
    if len(shape) != 3 or any(
        isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in shape
    ):
        raise InvalidRequest(
            f"input shape must be three positive integers (channels, height, width), got {shape!r}"
        )
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise InvalidRequest(f"num_classes must be an integer >= 2, got {num_classes!r}")
    return shape


def layer_output(
    layer: Layer, index: int, shape: Shape, flattened_by: str | None = None
) -> tuple[Shape, int, int]:
    """Output shape, params and FLOPs of one layer on ``shape``; raises `InvalidArchitecture`.

    ``flattened_by`` names the layer that made the tensor flat, for the error message.
    """
    where = f"layer {index} ({layer.label})"
    if isinstance(layer, Conv2D | MaxPool2D | AvgPool2D | GlobalAvgPool | ConvBlock | SepConv
                  | Residual) and len(shape) == 1:
        source = f" (flattened at {flattened_by})" if flattened_by else ""
        raise InvalidArchitecture(
            f"{where} needs a 3-D feature map but its input is a flat vector of {shape[0]} "
            f"features{source}; spatial layers must come before the first Dense, Flatten or "
            "GlobalAvgPool"
        )
    if isinstance(layer, Conv2D):
        c, h, w = shape
        k, s = layer.kernel, layer.stride
        pad = (k - 1) // 2 if layer.padding == "same" else 0
        if k > h + 2 * pad or k > w + 2 * pad:
            raise InvalidArchitecture(
                f"{where} does not fit its input: kernel {k}x{k} is larger than the {h}x{w} "
                f"feature map (input {_dims(shape)})"
            )
        out = (layer.filters, (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1)
        macs = layer.filters * out[1] * out[2] * c * k * k
        return out, layer.filters * c * k * k + layer.filters, 2 * macs
    if isinstance(layer, ConvBlock | SepConv | Residual):
        return block_output(layer, shape)
    if isinstance(layer, MaxPool2D | AvgPool2D):
        c, h, w = shape
        k, s = layer.size, layer.stride
        if k > h or k > w:
            raise InvalidArchitecture(
                f"{where} does not fit its input: pool {k}x{k} is larger than the {h}x{w} "
                f"feature map (input {_dims(shape)})"
            )
        return (c, (h - k) // s + 1, (w - k) // s + 1), 0, 0
    if isinstance(layer, GlobalAvgPool):
        return (shape[0],), 0, 0
    if isinstance(layer, Dense):
        features = 1
        for d in shape:
            features *= d
        return (layer.units,), features * layer.units + layer.units, 2 * features * layer.units
    if isinstance(layer, Flatten):
        features = 1
        for d in shape:
            features *= d
        return (features,), 0, 0
    if isinstance(layer, BatchNorm):
        return shape, 2 * shape[0], 0
    if isinstance(layer, Dropout | Activation):
        return shape, 0, 0
    raise InvalidArchitecture(f"{where}: unsupported layer type {type(layer).__name__}")


def block_output(layer: ConvBlock | SepConv | Residual, shape: Shape) -> tuple[Shape, int, int]:
    """Output shape, params and FLOPs of a composite block (same padding, so any input fits).

    Convolutions have no bias; each BatchNorm has 2 parameters per channel; FLOPs count the
    convolutions only (2 per multiply-add), the shortcut's 1x1 convolution included.
    """
    c, h, w = shape
    f, k, s = layer.filters, layer.kernel, layer.stride
    ho, wo = (h - 1) // s + 1, (w - 1) // s + 1
    pixels = ho * wo
    if isinstance(layer, ConvBlock):
        params, macs = c * f * k * k + 2 * f, f * pixels * c * k * k
    elif isinstance(layer, SepConv):
        params = c * k * k + 2 * c + c * f + 2 * f
        macs = c * k * k * pixels + c * f * pixels
    else:
        params = c * f * k * k + 2 * f + f * f * k * k + 2 * f
        macs = f * pixels * c * k * k + f * pixels * f * k * k
        if c != f or s != 1:
            params += c * f + 2 * f
            macs += f * pixels * c
    return (f, ho, wo), params, 2 * macs


def infer_shapes(
    arch: Architecture, input_shape: Sequence[int], num_classes: int
) -> list[LayerInfo]:
    """Per-layer shapes, params and FLOPs, head included; the architecture's validity check.

    Raises `InvalidArchitecture` naming the first layer (index, type, shapes) that does not fit,
    and `InvalidRequest` for a bad input shape or class count. A reference classifier has no layer
    list to infer from: it raises `InvalidArchitecture`; its counts are measured on its torch
    module by `nasdb.trainers.measure.layer_table`, which serves any architecture.
    """
    shape = check_input_shape(input_shape, num_classes)
    if arch.reference is not None:
        raise InvalidArchitecture(
            f"reference classifier {arch.reference!r} has no layer list to infer shapes from; "
            "its counts are measured on its module (nasdb.trainers.measure.layer_table)"
        )
    infos: list[LayerInfo] = []
    flattened_by: str | None = None
    for index, layer in enumerate(arch.layers):
        out, params, flops = layer_output(layer, index, shape, flattened_by)
        if any(d < 1 for d in out):
            raise InvalidArchitecture(
                f"layer {index} ({layer.label}) gives an empty output {_dims(out)} "
                f"(input {_dims(shape)})"
            )
        if len(shape) == 3 and len(out) == 1:
            flattened_by = f"layer {index}, {layer.TYPE}"
        infos.append(LayerInfo(index, layer.TYPE, shape, out, params, flops))
        shape = out
    end = len(arch.layers)
    if len(shape) == 3:
        flat = (shape[0] * shape[1] * shape[2],)
        infos.append(LayerInfo(end, "Flatten", shape, flat, 0, 0, head=True))
        shape = flat
    out, params, flops = layer_output(Dense(num_classes), end, shape)
    infos.append(LayerInfo(end, "Dense", shape, out, params, flops, head=True))
    return infos


def count_params(arch: Architecture, input_shape: Sequence[int], num_classes: int) -> int:
    """Trainable parameters of the built module (head included); raises like `infer_shapes`."""
    return sum(info.params for info in infer_shapes(arch, input_shape, num_classes))


def count_flops(arch: Architecture, input_shape: Sequence[int], num_classes: int) -> int:
    """FLOPs of one forward pass on one image (2 per multiply-add in Conv2D and Dense)."""
    return sum(info.flops for info in infer_shapes(arch, input_shape, num_classes))

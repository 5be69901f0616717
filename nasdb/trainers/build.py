"""Architecture -> `torch.nn.Module`: the sequential builder and the reference classifiers.

`build_module` is the one place an `Architecture` becomes torch. Its parameter count and FLOPs
are exactly what `nasdb.search.count_params` / `count_flops` report (the search tests check this
on sampled architectures). Reference classifiers (AutoCl's cnn, vgg, alexnet, resnet18, densenet,
mobilenet) are adapted to small inputs — 1x8x8 digits, 28x28 and 32x32 images, any channel count —
by using stride-1 3x3 stems and fewer downsampling steps; torchvision's classes are used where it
has them, always with ``weights=None`` (nothing is downloaded).
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models import DenseNet, MobileNetV2, resnet18
from torchvision.ops.misc import Conv2dNormActivation

from nasdb.schema.errors import InvalidArchitecture
from nasdb.search import (
    REFERENCE_NAMES,
    Activation,
    Architecture,
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
    infer_shapes,
)

__all__ = ["REFERENCES", "build_module", "reference_stats"]

_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "elu": nn.ELU,
    "gelu": nn.GELU,
}


# ==== sequential layers =========================================================================


class FlattenDense(nn.Linear):
    """A Dense layer: flattens a (N, C, H, W) input first (REMAP's Keras Dense did the same)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.flatten(1))


class GlobalAvgPool2d(nn.Module):
    """Mean over height and width: (N, C, H, W) -> (N, C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


def _conv_bn(c: int, f: int, k: int, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c, f, k, stride, (k - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(f)]


class ResidualBlock(nn.Module):
    """`nasdb.search.Residual`: conv-BN-act-conv-BN plus the shortcut, then the activation."""

    def __init__(self, c: int, f: int, k: int, stride: int, fn: str) -> None:
        super().__init__()
        self.body = nn.Sequential(*_conv_bn(c, f, k, stride), _ACTIVATIONS[fn](),
                                  *_conv_bn(f, f, k))
        self.shortcut = (nn.Identity() if c == f and stride == 1
                         else nn.Sequential(*_conv_bn(c, f, 1, stride)))
        self.act = _ACTIVATIONS[fn]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


def _block_module(layer: ConvBlock | SepConv | Residual, c: int) -> nn.Module:
    f, k, s, act = layer.filters, layer.kernel, layer.stride, _ACTIVATIONS[layer.fn]
    if isinstance(layer, ConvBlock):
        return nn.Sequential(*_conv_bn(c, f, k, s), act())
    if isinstance(layer, SepConv):
        return nn.Sequential(*_conv_bn(c, c, k, s, groups=c), act(), *_conv_bn(c, f, 1), act())
    return ResidualBlock(c, f, k, s, layer.fn)


def _layer_module(layer: Layer, in_shape: tuple[int, ...]) -> nn.Module:
    spatial = len(in_shape) == 3
    if isinstance(layer, ConvBlock | SepConv | Residual):
        return _block_module(layer, in_shape[0])
    if isinstance(layer, Conv2D):
        pad = (layer.kernel - 1) // 2 if layer.padding == "same" else 0
        return nn.Conv2d(in_shape[0], layer.filters, layer.kernel, layer.stride, pad)
    if isinstance(layer, MaxPool2D):
        return nn.MaxPool2d(layer.size, layer.stride)
    if isinstance(layer, AvgPool2D):
        return nn.AvgPool2d(layer.size, layer.stride)
    if isinstance(layer, Dropout):
        return nn.Dropout(layer.rate)
    if isinstance(layer, BatchNorm):
        return nn.BatchNorm2d(in_shape[0]) if spatial else nn.BatchNorm1d(in_shape[0])
    if isinstance(layer, Activation):
        return _ACTIVATIONS[layer.fn]()
    if isinstance(layer, Dense):
        features = in_shape[0] * in_shape[1] * in_shape[2] if spatial else in_shape[0]
        return FlattenDense(features, layer.units)
    if isinstance(layer, Flatten):
        return nn.Flatten()
    if isinstance(layer, GlobalAvgPool):
        return GlobalAvgPool2d()
    raise InvalidArchitecture(f"cannot build layer type {type(layer).__name__}")


def _sequential(arch: Architecture, input_shape: Sequence[int], num_classes: int) -> nn.Sequential:
    infos = infer_shapes(arch, input_shape, num_classes)  # raises InvalidArchitecture
    modules: OrderedDict[str, nn.Module] = OrderedDict()
    for layer, info in zip(arch.layers, infos, strict=False):
        modules[str(info.index)] = _layer_module(layer, info.input_shape)
    head = infos[-1]
    modules["head"] = FlattenDense(head.input_shape[0], num_classes)
    return nn.Sequential(modules)


# ==== reference classifiers =====================================================================


def _cnn(channels: int, num_classes: int, input_shape: tuple[int, int, int]) -> nn.Module:
    """A plain small CNN: two conv-relu-maxpool blocks, Dense 128, dropout, the head."""
    arch = Architecture.of(
        Conv2D(32, 3, padding="same"), Activation("relu"), MaxPool2D(2, 2),
        Conv2D(64, 3, padding="same"), Activation("relu"), MaxPool2D(2, 2),
        Dense(128), Activation("relu"), Dropout(0.5),
    )
    return _sequential(arch, input_shape, num_classes)


def _vgg(channels: int, num_classes: int, input_shape: tuple[int, int, int]) -> nn.Module:
    """VGG-style: three blocks of two 3x3 conv-BN-ReLU and a max pool (32, 64, 128 filters),
    global average pooling and a small classifier (torchvision's VGG would add a 4096-wide one)."""
    layers: list[nn.Module] = []
    c = channels
    for width in (32, 64, 128):
        for _ in range(2):
            layers += [nn.Conv2d(c, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
            c = width
        layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
    layers += [
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(128, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, num_classes),
    ]
    return nn.Sequential(*layers)


def _alexnet(channels: int, num_classes: int, input_shape: tuple[int, int, int]) -> nn.Module:
    """AlexNet-style: five convolutions (5x5 then 3x3, 64-192-384-256-256) with three 2x2 max
    pools, a 2x2 adaptive average pool and two dropout-regularised 512-wide Dense layers."""
    return nn.Sequential(
        nn.Conv2d(channels, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2, ceil_mode=True),
        nn.Conv2d(64, 192, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2, ceil_mode=True),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2, ceil_mode=True),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        nn.Dropout(0.5), nn.Linear(256 * 4, 512), nn.ReLU(),
        nn.Dropout(0.5), nn.Linear(512, 512), nn.ReLU(),
        nn.Linear(512, num_classes),
    )


def _resnet18(channels: int, num_classes: int, input_shape: tuple[int, int, int]) -> nn.Module:
    """torchvision's ResNet-18 with the CIFAR stem: a stride-1 3x3 conv and no max pool."""
    model = resnet18(weights=None, num_classes=num_classes)
    model.conv1 = nn.Conv2d(channels, 64, 3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


def _densenet(channels: int, num_classes: int, input_shape: tuple[int, int, int]) -> nn.Module:
    """A small DenseNet-BC from torchvision's DenseNet class: growth rate 12, blocks of
    (3, 6, 12, 8) layers (half of DenseNet-121's), 24 stem filters, and a stride-1 3x3 stem
    without max pool."""
    model = DenseNet(growth_rate=12, block_config=(3, 6, 12, 8), num_init_features=24,
                     num_classes=num_classes)
    model.features.conv0 = nn.Conv2d(channels, 24, 3, stride=1, padding=1, bias=False)
    model.features.pool0 = nn.Identity()
    return model


def _mobilenet(channels: int, num_classes: int, input_shape: tuple[int, int, int]) -> nn.Module:
    """torchvision's MobileNetV2 (width 1.0) with a stride-1 stem and the first stride-2 stage
    made stride 1 (total downsampling 8, as in CIFAR adaptations)."""
    setting = [
        [1, 16, 1, 1], [6, 24, 2, 1], [6, 32, 3, 2], [6, 64, 4, 2],
        [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1],
    ]
    model = MobileNetV2(num_classes=num_classes, inverted_residual_setting=setting)
    model.features[0] = Conv2dNormActivation(
        channels, 32, stride=1, norm_layer=nn.BatchNorm2d, activation_layer=nn.ReLU6
    )
    return model


_Builder = Callable[[int, int, tuple[int, int, int]], nn.Module]

#: Reference classifiers by their stable name: ``builder(channels, num_classes, input_shape)``.
REFERENCES: dict[str, _Builder] = {
    "cnn": _cnn,
    "vgg": _vgg,
    "alexnet": _alexnet,
    "resnet18": _resnet18,
    "densenet": _densenet,
    "mobilenet": _mobilenet,
}
assert tuple(REFERENCES) == REFERENCE_NAMES


# ==== the public builder ========================================================================


def build_module(
    arch: Architecture,
    input_shape: Sequence[int],
    num_classes: int,
    device: torch.device | str | None = None,
) -> nn.Module:
    """The torch module for ``arch`` on (C, H, W) inputs with a ``num_classes`` head (logits).

    Sequential architectures become an `nn.Sequential` with one module per body layer (named by
    its index) and ``head``. Raises `InvalidArchitecture` when the architecture does not fit the
    input. Uses torch's global RNG for initialisation (seed it for reproducible weights).
    """
    shape = tuple(input_shape)
    if arch.reference is not None:
        infer_shapes(Architecture(), shape, num_classes)  # validates the shape and class count
        c, h, w = shape
        model = REFERENCES[arch.reference](c, num_classes, (c, h, w))
    else:
        model = _sequential(arch, shape, num_classes)
    return model.to(device) if device is not None else model


def build_seeded(
    arch: Architecture, input_shape: Sequence[int], num_classes: int, seed: int
) -> nn.Module:
    """`build_module` with its initial weights drawn from ``seed`` (global RNG left untouched):
    the same architecture and seed always start from the same weights."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_module(arch, input_shape, num_classes)


@functools.lru_cache(maxsize=256)
def _reference_stats(name: str, shape: tuple[int, int, int], num_classes: int) -> tuple[int, int]:
    with torch.random.fork_rng(devices=[]):
        model = REFERENCES[name](shape[0], num_classes, shape).eval()
        params = sum(p.numel() for p in model.parameters())
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model(torch.zeros(1, *shape))
    return params, int(counter.get_total_flops())


def reference_stats(name: str, input_shape: Sequence[int], num_classes: int) -> tuple[int, int]:
    """(parameters, FLOPs per image) of a reference classifier, measured on the built module
    (FLOPs by `FlopCounterMode`: 2 per multiply-add in convolutions and matrix products).

    Cached; does not disturb torch's global RNG.
    """
    c, h, w = (int(d) for d in input_shape)
    if name not in REFERENCES:
        raise InvalidArchitecture(
            f"unknown reference classifier {name!r}; known: {', '.join(REFERENCES)}"
        )
    return _reference_stats(name, (c, h, w), int(num_classes))

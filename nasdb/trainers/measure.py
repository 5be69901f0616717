"""Parameter and FLOP counts of any architecture: inferred for a layer list, measured for a
reference classifier.

`nasdb.search.infer_shapes` counts a layer list without torch; a reference classifier (AutoCl's
vgg, resnet18, ...) has no layer list, so its counts are measured on the module
`nasdb.trainers.build` builds (torch is imported only then). Callers that may hold a reference
classifier — proposing a model, re-counting models for another dataset — use `layer_table`.
"""

from __future__ import annotations

from collections.abc import Sequence

from nasdb.search import Architecture, LayerInfo, check_input_shape, infer_shapes

__all__ = ["count_flops", "count_params", "layer_table"]


def layer_table(arch: Architecture, input_shape: Sequence[int], num_classes: int) -> list[LayerInfo]:
    """`infer_shapes` for a layer list; one measured row for a reference classifier.

    Raises like `infer_shapes` (`InvalidArchitecture`, `InvalidRequest`).
    """
    if arch.reference is None:
        return infer_shapes(arch, input_shape, num_classes)
    shape = check_input_shape(input_shape, num_classes)
    from nasdb.trainers.build import reference_stats

    params, flops = reference_stats(arch.reference, shape, num_classes)
    return [LayerInfo(0, arch.reference, shape, (num_classes,), params, flops)]


def count_params(arch: Architecture, input_shape: Sequence[int], num_classes: int) -> int:
    """Trainable parameters of the built module, head included (any architecture)."""
    return sum(info.params for info in layer_table(arch, input_shape, num_classes))


def count_flops(arch: Architecture, input_shape: Sequence[int], num_classes: int) -> int:
    """FLOPs of one forward pass on one image (any architecture)."""
    return sum(info.flops for info in layer_table(arch, input_shape, num_classes))

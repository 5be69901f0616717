"""Size bounds: an architecture too large to train is refused when proposed, not when claimed.

A job whose model cannot be allocated would crash every worker that claimed it (a poison job), so
proposals are checked against two settings: ``NASDB_MAX_PARAMS`` (trainable parameters) and
``NASDB_MAX_ACTIVATION_MB`` (float32 activations of one training batch, every layer's output kept
for the backward pass, the input included). The message names the layer that crosses the bound
and the sizes, and the setting to raise.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import prod

from nasdb.schema import settings
from nasdb.schema.errors import InvalidArchitecture

from ._architecture import Architecture
from ._shapes import LayerInfo, _dims

_BYTES_PER_VALUE = 4  # float32


def _si(n: float) -> str:
    for value, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= value:
            return f"{n / value:.3g}{suffix}"
    return f"{n:.3g}"


def _name(arch: Architecture, info: LayerInfo) -> str:
    if info.head:
        return f"the output head ({info.type} {_dims(info.output_shape)})"
    if arch.reference is not None:
        return f"reference {arch.reference}"
    return f"layer {info.index} ({arch.layers[info.index].label})"


def check_bounds(arch: Architecture, infos: Sequence[LayerInfo], batch_size: int) -> None:
    """Raise `InvalidArchitecture` when the model passes the parameter or activation bound."""
    max_params = settings.number("max_params")
    max_bytes = settings.number("max_activation_mb") * 2**20
    params = 0
    activations = prod(infos[0].input_shape) * batch_size * _BYTES_PER_VALUE if infos else 0
    for info in infos:
        params += info.params
        if params > max_params:
            raise InvalidArchitecture(
                f"{_name(arch, info)} has {_si(info.params)} parameters, which brings the model "
                f"to {_si(params)}, above the limit of {_si(max_params)} "
                "(NASDB_MAX_PARAMS); make the layer smaller"
            )
        activations += prod(info.output_shape) * batch_size * _BYTES_PER_VALUE
        if activations > max_bytes:
            raise InvalidArchitecture(
                f"{_name(arch, info)} outputs {_dims(info.output_shape)} per image; with batch "
                f"size {batch_size} the activations reach {activations / 2**20:,.0f} MiB, above "
                f"the limit of {max_bytes / 2**20:,.0f} MiB (NASDB_MAX_ACTIVATION_MB); use a "
                "smaller layer or batch"
            )

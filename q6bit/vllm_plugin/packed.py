"""The packed triple as vLLM parameters of one layer, and its dequantization
into the layer's dtype after loading: the part the linear and the embedding
methods share.

The parameters are the rank's partition of the checkpoint's tensors,
``qweight [rows, cols/G, 3G/4]``, ``zero_point`` and ``scales [rows, cols/G, 1]``,
marked ``output_dim=0, input_dim=1``: vLLM's own layer weight loaders narrow
the checkpoint's full tensors to the rank's rows (column-parallel, QKV,
merged, vocab-parallel) or groups (row-parallel), so no code of ours slices
tensors for tensor parallelism.
"""

from __future__ import annotations

import time

import torch
from vllm.model_executor.utils import set_weight_attrs

from .. import envs, ops
from .. import layout as fmt
from ..ops import dequantize
from . import load_stats

PARTS = fmt.PARTS  # qweight, zero_point, scales


def tp_size() -> int:
    try:
        from vllm.distributed import get_tensor_model_parallel_world_size

        return get_tensor_model_parallel_world_size()
    except Exception:  # not initialized (a layer built outside an engine)
        return 1


def check_partition(prefix: str, cols: int, total_cols: int, group_size: int) -> None:
    """The rank's input columns must be whole groups (row-parallel layers
    split the input dim; every layer needs cols % G == 0)."""
    if cols % group_size == 0:
        return
    tp = tp_size()
    split = (
        f" (its {total_cols} input columns split over tensor-parallel size {tp})"
        if cols != total_cols
        else ""
    )
    raise ValueError(
        f"q6bit: layer {prefix or '?'} has {cols} input columns per rank{split}, not a "
        f"multiple of the group size G={group_size}: every rank must hold whole groups. "
        f"Use a tensor-parallel size that splits its {total_cols // group_size} group(s) "
        f"evenly (now {tp}), or quantize the model with a group size dividing {cols}."
    )


def create_packed_params(
    layer: torch.nn.Module, rows: int, cols: int, group_size: int, **extra_weight_attrs
) -> None:
    """Registers the rank's empty qweight / zero_point / scales on `layer`."""
    n_groups = cols // group_size
    shapes = {
        fmt.QWEIGHT: (rows, n_groups, fmt.packed_bytes(group_size)),
        fmt.ZERO_POINT: (rows, n_groups, 1),
        fmt.SCALES: (rows, n_groups, 1),
    }
    for part in PARTS:
        param = torch.nn.Parameter(
            torch.empty(shapes[part], dtype=fmt.DTYPES[part]), requires_grad=False
        )
        set_weight_attrs(param, {"output_dim": 0, "input_dim": 1})
        set_weight_attrs(param, extra_weight_attrs)
        layer.register_parameter(part, param)


def has_packed_params(layer: torch.nn.Module) -> bool:
    return isinstance(getattr(layer, fmt.QWEIGHT, None), torch.Tensor)


def dequantize_packed(layer: torch.nn.Module, name: str, dtype: torch.dtype) -> torch.nn.Parameter:
    """Dequantizes the layer's packed triple on its device into `dtype` in
    one pass (bit for bit ``dtype(reference fp16)``), removes the packed
    parameters and registers the result as ``layer.weight``."""
    q, zp, s = (getattr(layer, part).data for part in PARTS)
    stats = load_stats.current()
    t0 = time.perf_counter()
    try:
        weight = dequantize(q, zp, s, backend=envs.backend(), dtype=dtype)
    except (ValueError, RuntimeError) as e:
        raise type(e)(f"q6bit: {name}: {e}") from e
    seconds = time.perf_counter() - t0
    for part in PARTS:
        delattr(layer, part)
    param = torch.nn.Parameter(weight, requires_grad=False)
    set_weight_attrs(param, {"output_dim": 0, "input_dim": 1})
    layer.register_parameter("weight", param)
    stats.add_dequantized(name, weight, seconds)
    return param


def keep_packed(layer: torch.nn.Module, name: str) -> None:
    """Packed mode: the layer keeps its triple (made contiguous, which vLLM's
    narrowing leaves it already) and counts as loaded, not dequantized."""
    device = getattr(layer, fmt.QWEIGHT).device
    if device.type != "cpu":
        raise ValueError(
            f"q6bit: {name}: packed mode (q6bit-packed) computes on CPUs only; this layer is "
            f"on {device}. Serve with --quantization q6bit (weights dequantized on the GPU)."
        )
    for part in PARTS:
        param = getattr(layer, part)
        if not param.data.is_contiguous():
            param.data = param.data.contiguous()
    q = getattr(layer, fmt.QWEIGHT)
    load_stats.current().add_kept_packed(name, q.shape[0] * q.shape[1] * fmt.group_size_of(q.shape))


def packed_triple(layer: torch.nn.Module) -> tuple[torch.Tensor, ...]:
    return tuple(getattr(layer, part) for part in PARTS)


def packed_linear(
    layer: torch.nn.Module, x: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """x @ W.T + bias from the layer's packed triple (q6bit.ops.linear)."""
    return ops.linear(x, *packed_triple(layer), bias)


class PackedWeights:
    """What the q6bit linear and embedding methods share: the rank's packed
    triple as the layer's weights, and vLLM's unquantized method (`dense`)
    for the layer once it is dequantized (dense mode) or `packed` mode,
    where the triple stays and every product computes from it."""

    def __init__(self, group_size: int, prefix: str, dense, packed: bool = False):
        self.group_size = group_size
        self.prefix = prefix
        self.dense = dense
        self.packed = packed
        self.params_dtype = None

    def create_weights(
        self,
        layer: torch.nn.Module,
        input_size_per_partition: int,
        output_partition_sizes: list[int],
        input_size: int,
        output_size: int,
        params_dtype: torch.dtype,
        **extra_weight_attrs,
    ):
        check_partition(self.prefix, input_size_per_partition, input_size, self.group_size)
        self.params_dtype = params_dtype
        create_packed_params(
            layer,
            sum(output_partition_sizes),
            input_size_per_partition,
            self.group_size,
            **extra_weight_attrs,
        )

    def apply(
        self, layer: torch.nn.Module, x: torch.Tensor, bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.dense.apply(layer, x, bias)

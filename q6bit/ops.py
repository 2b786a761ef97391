"""Single-tensor entry points with a choice of backend.

``backend="fast"`` (default) runs the Highway kernels through
``torch.ops.q6bit`` on CPU tensors, and the op's registered kernel on other
devices where one is registered (CUDA: the Triton kernel of
q6bit/triton_ops.py); other tensors go to the reference, which is bit-exact
there too. ``backend="reference"`` always runs
the plain-PyTorch oracle of q6bit/reference.py.
"""

from __future__ import annotations

import torch

from . import reference

BACKENDS = ("fast", "reference")
_loaded = None


def _load_extension():
    """Imports q6bit._C once (it registers torch.ops.q6bit.*, and holds the
    kernel-target helpers) with the ops' fake implementations; returns it."""
    global _loaded
    if _loaded is None:
        try:
            from . import _C, _autograd, _fake  # noqa: F401

            _loaded = True
        except ImportError as e:
            _loaded = e
        else:
            _device_kernel("cuda")  # the Triton kernel joins the op where it can run
    if _loaded is not True:
        raise RuntimeError(
            "q6bit's C++ extension is not built or cannot load "
            f"({_loaded}). Install with `pip install --no-build-isolation .` "
            "against the installed torch, or pass backend='reference'."
        )
    from . import _C

    return _C


def check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")


def _use_kernels(backend: str, *tensors: torch.Tensor) -> bool:
    check_backend(backend)
    if backend == "reference" or any(t.device.type != "cpu" for t in tensors):
        return False
    _load_extension()
    return True


def _device_kernel(device_type: str) -> bool:
    """Whether torch.ops.q6bit.dequantize has a kernel for this (non-CPU)
    device type, registering the Triton one for CUDA on first use."""
    if device_type == "cuda":
        from . import triton_ops

        return triton_ops.ensure_registered()
    return False


def _use_device_op(backend: str, *tensors: torch.Tensor) -> bool:
    """backend "fast" and all tensors on one non-CPU device with a kernel."""
    check_backend(backend)
    types = {t.device.type for t in tensors}
    return (
        backend == "fast" and len(types) == 1 and "cpu" not in types and _device_kernel(types.pop())
    )


def dequantize(
    qweight: torch.Tensor,
    zero_point: torch.Tensor,
    scales: torch.Tensor,
    backend: str = "fast",
    huge_pages: bool = True,
    dtype: torch.dtype = torch.float16,
) -> torch.Tensor:
    """Weight [..., n_groups*G] of one q6bit triple, as `dtype`: the fp16
    result converted as ``.to(dtype)`` does (float16, bfloat16 or float32).
    CPU tensors run the Highway kernels, CUDA tensors the Triton kernel.

    huge_pages (CPU kernels only): True lets the op decide, which gives a
    large output its own huge-page mapping, fastest when many outputs stay
    alive at once; False allocates with torch.empty, for outputs that are
    consumed and freed one by one (a streaming loader), so that torch's
    allocator hands the next one memory that is already touched."""
    if _use_device_op(backend, qweight, zero_point, scales):
        return torch.ops.q6bit.dequantize(qweight, zero_point, scales, dtype=dtype)
    if _use_kernels(backend, qweight, zero_point, scales):
        # .out has no autograd, and torch.compile cannot take it (its result
        # aliases `out`, which functionalization refuses for custom ops)
        functional = huge_pages or torch.compiler.is_compiling()
        if functional or (scales.requires_grad and torch.is_grad_enabled()):
            return torch.ops.q6bit.dequantize(qweight, zero_point, scales, dtype=dtype)
        out = torch.empty(_output_shape(qweight), dtype=dtype, device=qweight.device)
        return torch.ops.q6bit.dequantize.out(qweight, zero_point, scales, out=out)
    return as_dtype(reference.calculate_dequant(qweight, zero_point, scales), dtype)


def as_dtype(weight: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """An fp16 weight as `dtype`, as the kernels convert it: torch's
    .to(dtype), except that fp32 NaNs are the fp16 NaN widened exactly (sign,
    payload << 13). torch's own fp16 -> fp32 copy gives 0x7FFFFFFF for NaNs
    in the scalar tail of its vectorized loop (tensors shorter than a
    vector, or the last elements), so its NaN bits depend on the length."""
    out = weight.to(dtype)
    if dtype == torch.float32:
        nan = torch.isnan(weight)
        if nan.any():
            bits = weight.view(torch.int16).to(torch.int32)  # sign-extended
            widened = (bits & -0x8000) << 16 | 0x7F800000 | (bits & 0x3FF) << 13
            out = torch.where(nan, widened.view(torch.float32), out)
    return out


def _output_shape(qweight: torch.Tensor) -> list[int]:
    """A triple's output shape, [..., n_groups * G] (the op itself checks
    the triple)."""
    if qweight.dim() < 2 or qweight.shape[-1] % 3:
        return [0]  # invalid: the op raises its own error
    return [*qweight.shape[:-2], qweight.shape[-2] * (qweight.shape[-1] // 3 * 4)]


def dequantize_into(
    qweight: torch.Tensor, zero_point: torch.Tensor, scales: torch.Tensor, out: torch.Tensor
) -> torch.Tensor:
    """Kernels only: writes the weight into `out` (a contiguous tensor of as
    many elements on the inputs' device, float16, bfloat16 or float32,
    sharing no memory with the inputs; it takes the weight's shape) and
    returns it."""
    if _use_device_op("fast", qweight, zero_point, scales, out):
        return torch.ops.q6bit.dequantize.out(qweight, zero_point, scales, out=out)
    _load_extension()
    return torch.ops.q6bit.dequantize.out(qweight, zero_point, scales, out=out)


def dequantize_list(triples, backend: str = "fast") -> list[torch.Tensor]:
    """fp16 weights of many (qweight, zero_point, scales) triples. With the
    kernels, all of them in one parallel region (balanced across threads) on
    the CPU, in few launches (one per group size and chunk) on CUDA."""
    check_backend(backend)
    triples = list(triples)
    if not triples:
        return []
    qweights, zero_points, scales = (list(x) for x in zip(*triples))
    tensors = qweights + zero_points + scales
    if _eager_cuda(backend, tensors):
        from . import triton_dequant_list

        return triton_dequant_list.dequantize_list(qweights, zero_points, scales)
    if _use_device_op(backend, *tensors) or _use_kernels(backend, *tensors):
        return list(torch.ops.q6bit.dequantize_list(qweights, zero_points, scales))
    return [dequantize(*triple, backend=backend) for triple in triples]


def _eager_cuda(backend: str, tensors: list[torch.Tensor]) -> bool:
    """Whether to call the op's CUDA kernel (q6bit/triton_dequant_list.py)
    directly: all tensors on CUDA, not while torch.compile traces (it must
    see the op). Why not through torch.ops: the dispatcher converts each
    list element both ways, before the first launch, where the GPU waits;
    on the H200 host that cost 0.29 ms for a model's 762 tensors in one run
    and was within the noise in two others (BENCHMARKS.md)."""
    return (
        backend == "fast"
        and all(t.is_cuda for t in tensors)
        and not torch.compiler.is_compiling()
        and _device_kernel("cuda")
    )


def unpack(qweight: torch.Tensor, backend: str = "fast") -> torch.Tensor:
    """uint8 codes [..., n_groups, G] of a packed tensor."""
    if _use_kernels(backend, qweight):
        return torch.ops.q6bit.unpack(qweight)
    return reference.unsqueeze_from_6bit(qweight)


def linear(
    x: torch.Tensor,
    qweight: torch.Tensor,
    zero_point: torch.Tensor,
    scales: torch.Tensor,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """y = x @ W.T + bias from a packed [N, K] triple, W = dequantize(...,
    dtype=x.dtype) exactly; x [..., K] float16, bfloat16 or float32, bias
    [N] of x's dtype; returns [..., N] in x's dtype.

    CPU tensors run torch.ops.q6bit.linear (csrc/linear_op.cpp): small
    batches a packed GEMV that reads each packed byte once (fp32 products and
    sums, bias in fp32, one rounding), large ones dequantized tiles through
    torch's GEMM. Other devices: F.linear(x, dequantize(...)), i.e. their
    dense GEMM on the same weights."""
    tensors = [x, qweight, zero_point, scales] + ([] if bias is None else [bias])
    if any(t.device.type != "cpu" for t in tensors):
        w = dequantize(qweight, zero_point, scales, dtype=x.dtype).view(qweight.shape[0], -1)
        return torch.nn.functional.linear(x, w, bias)
    _load_extension()
    return torch.ops.q6bit.linear(x, qweight, zero_point, scales, bias)


def linear_config() -> tuple[int, int]:
    """q6bit.linear's (gemv_max_m, tile_bytes): batches of at most
    gemv_max_m rows take the packed GEMV, larger ones tiles of that many
    bytes of dequantized weights. gemv_max_m is -1 by default: chosen per
    call by x's dtype and the CPU (gemv_max_m(dtype) tells)."""
    return tuple(_load_extension().linear_config())


def set_linear_config(gemv_max_m: int | None = None, tile_bytes: int | None = None) -> None:
    """Retunes q6bit.linear for tests and benchmarks: gemv_max_m >= 0, or -1
    for the default; tile_bytes > 0; None keeps a value. Other values raise
    ValueError and change nothing."""
    _load_extension().set_linear_config(gemv_max_m, tile_bytes)


def gemv_max_m(dtype: torch.dtype) -> int:
    """The batch threshold q6bit.linear applies to x of `dtype` now: 32 for
    bfloat16 where the kernels use AMX tiles, 24 for bfloat16 where they use
    vdpbf16ps from one row of x (AMD's CPUs), 8 otherwise, unless set."""
    return _load_extension().gemv_max_m(dtype == torch.bfloat16)


# q6bit.linear's x86 instructions beyond Highway's AVX3_DL target, used
# where the CPU has them (kernels/q6bit_kernels.h, CpuExtension):
#   "fp16-tables": AVX512_FP16 + AVX512_BF16 build the bf16 weight tables;
#   "bf16-tables": AVX512_BF16 builds them where there is no AVX512_FP16;
#   "bf16-dot": AVX512_BF16's vdpbf16ps multiplies bf16 weights by bf16 x;
#   "amx": AMX-BF16 tiles do (Sapphire Rapids and later), before bf16-dot.
CPU_EXTENSIONS = ("fp16-tables", "bf16-tables", "bf16-dot", "amx")

# Extensions that another one overrides where both are allowed: forbidding
# the first then changes nothing (tests skip such combinations).
CPU_EXTENSION_OVERRIDDEN_BY = {"bf16-tables": "fp16-tables", "bf16-dot": "amx"}


def _cpu_extension(name: str):
    if name not in CPU_EXTENSIONS:
        raise ValueError(f"unknown CPU extension {name!r}: expected one of {CPU_EXTENSIONS}")
    return getattr(_load_extension().CpuExtension, name.replace("-", "_"))


def allow_cpu_extension(name: str, allowed: bool) -> None:
    """Allows (default) or forbids one of CPU_EXTENSIONS in q6bit.linear;
    the same weights and the same error bound either way (tests, benchmarks)."""
    _load_extension().allow_cpu_extension(_cpu_extension(name), allowed)


def cpu_extensions_in_use() -> list[str]:
    """The CPU_EXTENSIONS q6bit.linear uses now (allowed, this CPU has
    them, and the kernels dispatch to AVX3_DL)."""
    ext = _load_extension()
    return [n for n in CPU_EXTENSIONS if ext.cpu_extension_in_use(_cpu_extension(n))]


def linear_uses_tables() -> bool:
    """Whether q6bit.linear looks weights up in per-group tables on the
    target dispatched to now (AVX-512 VBMI); elsewhere it decodes each weight
    in registers, bound by its own instructions (BENCHMARKS.md)."""
    return bool(_load_extension().linear_uses_tables())


def kernel_target() -> str:
    """The Highway target the kernels dispatch to on this CPU."""
    return _load_extension().kernel_target()


def kernel_targets() -> list[str]:
    """Targets compiled in that this CPU can run, best first."""
    return list(_load_extension().kernel_targets())


def force_kernel_target(name: str) -> None:
    """Pins dispatch to one runnable target ("" restores the best one)."""
    if not _load_extension().force_kernel_target(name):
        raise ValueError(
            f"kernel target {name!r} is not runnable here; choose one of {kernel_targets()}"
        )


def parallel_threads() -> int:
    """Threads that really take part in one of the kernels' parallel regions
    (1 in a build without OpenMP, whatever torch.get_num_threads() says)."""
    return _load_extension().parallel_threads()

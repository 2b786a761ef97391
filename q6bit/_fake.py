"""Fake (Meta) implementations of the torch.ops.q6bit tensor ops.

They give outputs' shapes and dtypes without computing anything: FakeTensor,
torch.compile and Meta tensors use them. Written in Python (not as C++ Meta
kernels) so that symbolic shapes work. The C++ library names this module
(``m.set_python_module``), so torch imports it when it needs a fake.
Checks mirror csrc/validate.cpp's where they concern shapes and dtypes; the
messages name the op and the argument.
"""

from __future__ import annotations

import torch

from . import _C  # noqa: F401  (defines the ops registered below)

OUTPUT_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
_INT64_MAX = (1 << 63) - 1


def _check_group_tensor(op: str, name: str, t, dtype, expected: list, qweight) -> None:
    """zero_point / scales: dtype, shape [..., n_groups, 1], qweight's device."""
    torch._check(t.dtype == dtype, lambda: f"{op}: {name} must be {dtype}, got {t.dtype}")
    torch._check(
        list(t.shape) == expected,
        lambda: (
            f"{op}: {name} must have shape "
            f"{expected} (one per group of qweight), got {list(t.shape)}"
        ),
    )
    torch._check(
        t.device == qweight.device,
        lambda: f"{op}: {name} is on {t.device} but qweight is on {qweight.device}",
    )


def _layout(op: str, qweight, zero_point=None, scales=None):
    """(group size, output shape) of a triple, checked like the CPU op."""
    torch._check(
        qweight.dtype == torch.uint8, lambda: f"{op}: qweight must be uint8, got {qweight.dtype}"
    )
    torch._check(
        qweight.dim() >= 2,
        lambda: f"{op}: qweight must have shape [..., n_groups, 3*G/4], got {list(qweight.shape)}",
    )
    packed = qweight.shape[-1]
    torch._check(
        packed % 3 == 0,
        lambda: (
            f"{op}: qweight's last dim ({packed}) must be a "
            "positive multiple of 3 (3 bytes hold 4 codes)"
        ),
    )
    torch._check(packed > 0, lambda: f"{op}: qweight's last dim must be positive")
    group_size = packed // 3 * 4
    shape = [*qweight.shape[:-2], qweight.shape[-2] * group_size]
    numel = 1
    for d in shape:
        numel = numel * d
    if isinstance(numel, int):  # concrete shapes only: a SymInt cannot overflow here
        torch._check(
            numel <= _INT64_MAX >> 2 and shape[-1] <= _INT64_MAX,
            lambda: (
                f"{op}: qweight of shape {list(qweight.shape)} gives an output "
                "too large to represent (overflows int64)"
            ),
        )
    expected = [*qweight.shape[:-1], 1]
    for name, t, dtype in (
        ("zero_point", zero_point, torch.int8),
        ("scales", scales, torch.float16),
    ):
        if t is not None:
            _check_group_tensor(op, name, t, dtype, expected, qweight)
    return group_size, shape


def _check_dtype(op: str, arg: str, dtype) -> None:
    torch._check(
        dtype in OUTPUT_DTYPES,
        lambda: f"{op}: {arg} must be torch.float16, torch.bfloat16 or torch.float32, got {dtype}",
    )


@torch.library.register_fake("q6bit::dequantize")
def dequantize_fake(qweight, zero_point, scales, *, dtype=torch.float16):
    _check_dtype("q6bit.dequantize", "dtype", dtype)
    _, shape = _layout("q6bit.dequantize", qweight, zero_point, scales)
    return qweight.new_empty(shape, dtype=dtype)


@torch.library.register_fake("q6bit::dequantize.out")
def dequantize_out_fake(qweight, zero_point, scales, *, out):
    op = "q6bit.dequantize.out"
    _, shape = _layout(op, qweight, zero_point, scales)
    _check_dtype(op, "out", out.dtype)
    numel = 1
    for d in shape:
        numel = numel * d
    torch._check(
        out.numel() == numel,
        lambda: f"{op}: out must be a contiguous tensor of {numel} elements, got {out.numel()}",
    )
    return out.resize_(shape)


@torch.library.register_fake("q6bit::dequantize_list")
def dequantize_list_fake(qweights, zero_points, scales):
    op = "q6bit.dequantize_list"
    torch._check(
        len(qweights) == len(zero_points) == len(scales),
        lambda: (
            f"{op}: got {len(qweights)} qweights, {len(zero_points)} "
            f"zero_points and {len(scales)} scales; they must pair up"
        ),
    )
    outputs = []
    for i, triple in enumerate(zip(qweights, zero_points, scales)):
        _, shape = _layout(f"{op}[{i}]", *triple)
        outputs.append(triple[0].new_empty(shape, dtype=torch.float16))
    return outputs


@torch.library.register_fake("q6bit::unpack")
def unpack_fake(qweight):
    group_size, _ = _layout("q6bit.unpack", qweight)
    return qweight.new_empty([*qweight.shape[:-1], group_size])


@torch.library.register_fake("q6bit::linear")
def linear_fake(x, qweight, zero_point, scales, bias=None):
    op = "q6bit.linear"
    _check_dtype(op, "x", x.dtype)
    torch._check(x.dim() >= 1, lambda: f"{op}: x must have shape [..., K], got a 0-dim tensor")
    torch._check(
        qweight.dim() == 3,
        lambda: (
            f"{op}: qweight must have shape [N, n_groups, 3*G/4] (one weight matrix), "
            f"got {list(qweight.shape)}"
        ),
    )
    _, shape = _layout(op, qweight, zero_point, scales)
    n, k = shape
    torch._check(
        x.shape[-1] == k,
        lambda: f"{op}: x's last dim ({x.shape[-1]}) must be the weight's in_features ({k})",
    )
    if bias is not None:
        torch._check(
            bias.dtype == x.dtype,
            lambda: f"{op}: bias must have x's dtype ({x.dtype}), got {bias.dtype}",
        )
        torch._check(
            bias.dim() == 1 and bias.shape[0] == n,
            lambda: f"{op}: bias must have shape [{n}] (one per output feature)",
        )
    return x.new_empty([*x.shape[:-1], n])

"""The q6bit dequantization as a Triton kernel (GPU tensors; CPU tensors
under Triton's interpreter, TRITON_INTERPRET=1, for the tests).

Imported lazily (q6bit/triton_ops.py, the tests, the bench): `import q6bit`
never imports Triton.

Layout: every tensor is flattened. Group r (of R = zero_point.numel()) owns
packed bytes [r*P, (r+1)*P) with P = 3G/4, one zero point and one scale, and
outputs [r*G, (r+1)*G). Code j of a group starts at bit 6j of its bytes
(little-endian), so it is bits (6j mod 8).. of the 16-bit window at byte
6j div 8; the second byte is needed only when the code crosses a byte.

Grid: one program per BLOCK_G groups, a [BLOCK_G, GP] tile (GP = G rounded
up to a power of two, masked) so the scale and zero point are loaded once
per group and every row's stores are contiguous and vectorizable.

Rounding: (code - zp) * scale is exact in float32 (an 8-bit integer times an
11-bit significand, never near float32's subnormal range), so the fp16
conversion, round to nearest even (asked for explicitly: "rtne"), is the
single rounding of the reference, subnormals and overflow to inf included.
bf16 and fp32 outputs convert that fp16 value (fp16 -> fp32 is exact; then
round to nearest even for bf16, in integer arithmetic), as
`reference(...).to(dtype)` does.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

OUT_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
_TL_DTYPES = {torch.float16: tl.float16, torch.bfloat16: tl.bfloat16, torch.float32: tl.float32}
_INT32_LIMIT = 2**31 - 1


@triton.jit
def _fp16_to_bf16_rne(h):
    """bf16 nearest-even of an fp16 value, in integer arithmetic: the GPU's
    cvt.rn.bf16.f32 does the same, but Triton's interpreter truncates
    fp32 -> bf16, and the tests must check the code that runs on the GPU.
    fp16 -> fp32 is exact; inf stays inf; NaN becomes 0x7FC0, as torch's
    Half -> BFloat16 conversion on the CPU gives."""
    u = h.to(tl.float32).to(tl.int32, bitcast=True)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    is_nan = (u & 0x7FFFFFFF) > 0x7F800000
    b = tl.where(is_nan, 0x7FC0, rounded & 0xFFFF)
    return b.to(tl.int16).to(tl.bfloat16, bitcast=True)


@triton.jit
def _convert(h, OUT_DTYPE: tl.constexpr):
    """The fp16 result in the output dtype (see the module docstring)."""
    if OUT_DTYPE == tl.bfloat16:
        return _fp16_to_bf16_rne(h)
    elif OUT_DTYPE == tl.float32:
        return h.to(tl.float32)
    else:
        return h


@triton.jit
def _tile(
    q_ptr,
    zp_ptr,
    s_ptr,
    out_ptr,
    n_groups,
    block,
    G: tl.constexpr,
    GP: tl.constexpr,
    BLOCK_G: tl.constexpr,
    OUT_DTYPE: tl.constexpr,
):
    """Groups [block*BLOCK_G, (block+1)*BLOCK_G) of one tensor, byte loads
    (any G that is a multiple of 4)."""
    P: tl.constexpr = G // 4 * 3
    rows = block * BLOCK_G + tl.arange(0, BLOCK_G)  # group indices
    row_ok = rows < n_groups
    zp = tl.load(zp_ptr + rows, mask=row_ok, other=0).to(tl.int32)
    scale = tl.load(s_ptr + rows, mask=row_ok, other=0.0).to(tl.float32)

    j = tl.arange(0, GP)  # code index in a group
    bit = j * 6
    lo_byte = bit >> 3
    shift = bit & 7
    ok = row_ok[:, None] & (j < G)[None, :]
    src = q_ptr + rows[:, None] * P + lo_byte[None, :]
    b0 = tl.load(src, mask=ok, other=0).to(tl.int32)
    crosses = ok & (shift > 2)[None, :]  # code spans two bytes
    b1 = tl.load(src + 1, mask=crosses, other=0).to(tl.int32)
    code = ((b0 | (b1 << 8)) >> shift[None, :]) & 63

    w = (code - zp[:, None]).to(tl.float32) * scale[:, None]  # exact
    h = w.to(tl.float16, fp_downcast_rounding="rtne")  # the one rounding
    dst = out_ptr + rows[:, None] * G + j[None, :]
    tl.store(dst, _convert(h, OUT_DTYPE), mask=ok)


@triton.jit
def _dequant_kernel(
    q_ptr,
    zp_ptr,
    s_ptr,
    out_ptr,
    n_groups,
    G: tl.constexpr,
    GP: tl.constexpr,
    BLOCK_G: tl.constexpr,
    OUT_DTYPE: tl.constexpr,
    WIDE: tl.constexpr,
):
    pid = tl.program_id(0)
    if WIDE:  # offsets past 2**31: 64-bit index arithmetic
        pid = pid.to(tl.int64)
    _tile(q_ptr, zp_ptr, s_ptr, out_ptr, n_groups, pid, G, GP, BLOCK_G, OUT_DTYPE)


@triton.jit
def _codes16(w0, w1, w2):
    """The 16 codes of 12 packed bytes (3 little-endian words), in order, as
    a new last dim of 16 (so each thread owns all 16). tl.join appends the
    new dim last, so the first join picks the most significant index bit:
    element [d1, d2, d3, d4] of the result is code 8*d1 + 4*d2 + 2*d3 + d4."""
    c0 = w0 & 63
    c1 = (w0 >> 6) & 63
    c2 = (w0 >> 12) & 63
    c3 = (w0 >> 18) & 63
    c4 = (w0 >> 24) & 63
    c5 = ((w0 >> 30) & 3) | ((w1 & 15) << 2)
    c6 = (w1 >> 4) & 63
    c7 = (w1 >> 10) & 63
    c8 = (w1 >> 16) & 63
    c9 = (w1 >> 22) & 63
    c10 = ((w1 >> 28) & 15) | ((w2 & 3) << 4)
    c11 = (w2 >> 2) & 63
    c12 = (w2 >> 8) & 63
    c13 = (w2 >> 14) & 63
    c14 = (w2 >> 20) & 63
    c15 = (w2 >> 26) & 63
    r0, r1, r2, r3 = tl.join(c0, c8), tl.join(c1, c9), tl.join(c2, c10), tl.join(c3, c11)
    r4, r5, r6, r7 = tl.join(c4, c12), tl.join(c5, c13), tl.join(c6, c14), tl.join(c7, c15)
    s0, s1, s2, s3 = tl.join(r0, r4), tl.join(r1, r5), tl.join(r2, r6), tl.join(r3, r7)
    return tl.join(tl.join(s0, s2), tl.join(s1, s3))


@triton.jit
def _tile16(
    q_ptr,
    zp_ptr,
    s_ptr,
    out_ptr,
    n_groups,
    block,
    G: tl.constexpr,
    UP: tl.constexpr,
    BLOCK_G: tl.constexpr,
    OUT_DTYPE: tl.constexpr,
):
    """G a multiple of 16: 3 word loads per 16 codes instead of 2 byte loads
    per code (the byte kernel is bound by load instructions, not bytes).
    q_ptr points to int32 words: a group is 3G/16 of them."""
    U: tl.constexpr = G // 16  # 12-byte units a group
    rows = block * BLOCK_G + tl.arange(0, BLOCK_G)
    row_ok = rows < n_groups
    zp = tl.load(zp_ptr + rows, mask=row_ok, other=0).to(tl.int32)
    scale = tl.load(s_ptr + rows, mask=row_ok, other=0.0).to(tl.float32)

    u = tl.arange(0, UP)
    ok = row_ok[:, None] & (u < U)[None, :]
    src = q_ptr + rows[:, None] * (3 * U) + 3 * u[None, :]
    w0 = tl.load(src, mask=ok, other=0)
    w1 = tl.load(src + 1, mask=ok, other=0)
    w2 = tl.load(src + 2, mask=ok, other=0)
    code = tl.reshape(_codes16(w0, w1, w2), (BLOCK_G, UP * 16))

    w = (code - zp[:, None]).to(tl.float32) * scale[:, None]  # exact
    h = w.to(tl.float16, fp_downcast_rounding="rtne")  # the one rounding
    col = tl.arange(0, UP * 16)
    dst = out_ptr + rows[:, None] * G + col[None, :]
    tl.store(dst, _convert(h, OUT_DTYPE), mask=row_ok[:, None] & (col < G)[None, :])


@triton.jit
def _dequant16_kernel(
    q_ptr,
    zp_ptr,
    s_ptr,
    out_ptr,
    n_groups,
    G: tl.constexpr,
    UP: tl.constexpr,
    BLOCK_G: tl.constexpr,
    OUT_DTYPE: tl.constexpr,
    WIDE: tl.constexpr,
):
    pid = tl.program_id(0)
    if WIDE:
        pid = pid.to(tl.int64)
    _tile16(q_ptr, zp_ptr, s_ptr, out_ptr, n_groups, pid, G, UP, BLOCK_G, OUT_DTYPE)


def _pow2_at_least(n: int) -> int:
    return 1 << (n - 1).bit_length()


def launch_config(group_size: int) -> tuple[int, int, int]:
    """(GP, BLOCK_G, num_warps): about 4096 outputs a program (8 KiB of fp16),
    enough bytes in flight per SM without spilling registers."""
    gp = _pow2_at_least(group_size)
    block_g = max(1, 4096 // gp)
    return gp, block_g, 4


def check_inputs(qweight, zero_point, scales) -> int:
    """Validates a triple like the C++ op (dtypes, shapes, one device,
    contiguous); returns the group size. The usual case is tested first in
    few Python operations: the list op pays this per tensor on the host."""
    shape = qweight.shape
    if (
        qweight.dtype == torch.uint8
        and zero_point.dtype == torch.int8
        and scales.dtype == torch.float16
        and len(shape) >= 2
        and shape[-1] % 3 == 0
        and zero_point.shape == scales.shape == shape[:-1] + (1,)
        and qweight.device == zero_point.device == scales.device
        and qweight.is_contiguous()
        and zero_point.is_contiguous()
        and scales.is_contiguous()
    ):
        return shape[-1] // 3 * 4
    _raise_invalid(qweight, zero_point, scales)


def _raise_invalid(qweight, zero_point, scales):
    """The error check_inputs found, named."""
    if (
        qweight.dtype != torch.uint8
        or zero_point.dtype != torch.int8
        or scales.dtype != torch.float16
    ):
        raise ValueError(
            "expected qweight uint8, zero_point int8, scales float16, got "
            f"{qweight.dtype}, {zero_point.dtype}, {scales.dtype}"
        )
    if qweight.dim() < 2 or qweight.shape[-1] % 3:
        raise ValueError(f"qweight must be [..., n_groups, 3*G/4], got {tuple(qweight.shape)}")
    groups_shape = (*qweight.shape[:-1], 1)
    for name, t in (("zero_point", zero_point), ("scales", scales)):
        if tuple(t.shape) != groups_shape:
            raise ValueError(f"{name} must have shape {groups_shape}, got {tuple(t.shape)}")
    if not (qweight.device == zero_point.device == scales.device):
        raise ValueError(
            "all tensors must be on one device, got "
            f"{qweight.device}, {zero_point.device}, {scales.device}"
        )
    raise ValueError("qweight, zero_point, scales and out must be contiguous")


def check_triple(qweight, zero_point, scales, out) -> int:
    """check_inputs and the output tensor; returns the group size."""
    group_size = check_inputs(qweight, zero_point, scales)
    if out.dtype not in OUT_DTYPES:
        raise ValueError(f"out dtype must be one of {OUT_DTYPES}, got {out.dtype}")
    if out.device != qweight.device:
        raise ValueError(
            f"all tensors must be on one device, got {qweight.device}, out on {out.device}"
        )
    if not out.is_contiguous():
        raise ValueError("qweight, zero_point, scales and out must be contiguous")
    if out.numel() != zero_point.numel() * group_size:
        raise ValueError(
            f"out has {out.numel()} elements, the weight {zero_point.numel() * group_size}"
        )
    return group_size


def uses_words(group_size: int, qweight_address: int) -> bool:
    """Whether the word kernel (_tile16) can read a qweight at this address."""
    return group_size % 16 == 0 and qweight_address % 4 == 0


def dequantize_into(
    qweight: torch.Tensor,
    zero_point: torch.Tensor,
    scales: torch.Tensor,
    out: torch.Tensor,
    block_groups: int | None = None,
) -> torch.Tensor:
    """Writes the weight into `out` (contiguous, float16/bfloat16/float32, as
    many elements as the weight) and returns it reshaped to [..., n_groups*G].

    block_groups (a power of two) overrides the groups per program: Triton's
    interpreter pays per program, so the CPU tests run the same kernel with
    fewer, larger programs."""
    group_size = check_triple(qweight, zero_point, scales, out)
    *outer, n_groups, _ = qweight.shape
    out = out.view(*outer, n_groups * group_size)
    n = zero_point.numel()
    if n == 0:
        return out
    gp, block_g, num_warps = launch_config(group_size)
    block_g = block_groups or block_g
    wide = max(qweight.numel(), out.numel()) + gp > _INT32_LIMIT
    grid = (triton.cdiv(n, block_g),)
    if uses_words(group_size, qweight.data_ptr()):
        _dequant16_kernel[grid](
            qweight.view(torch.int32),
            zero_point,
            scales,
            out,
            n,
            G=group_size,
            UP=_pow2_at_least(group_size // 16),
            BLOCK_G=block_g,
            OUT_DTYPE=_TL_DTYPES[out.dtype],
            WIDE=wide,
            num_warps=num_warps,
        )
    else:
        _dequant_kernel[grid](
            qweight,
            zero_point,
            scales,
            out,
            n,
            G=group_size,
            GP=gp,
            BLOCK_G=block_g,
            OUT_DTYPE=_TL_DTYPES[out.dtype],
            WIDE=wide,
            num_warps=num_warps,
        )
    return out


def dequantize(
    qweight: torch.Tensor,
    zero_point: torch.Tensor,
    scales: torch.Tensor,
    dtype: torch.dtype | None = None,
    block_groups: int | None = None,
) -> torch.Tensor:
    """A new [..., n_groups*G] tensor of `dtype` (default float16)."""
    out = torch.empty(qweight.numel() // 3 * 4, dtype=dtype or torch.float16, device=qweight.device)
    return dequantize_into(qweight, zero_point, scales, out, block_groups)

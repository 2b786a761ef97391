"""Inputs and the bit-pattern comparison shared by the Triton tests (no
conftest import: these tests also run where q6bit._C is not built)."""

from __future__ import annotations

import torch

from q6bit import reference
from q6bit.quantize import pack_6bit

OUT_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
# Zero points that, with codes 0..63, give every code - zero in -127..191.
EXHAUSTIVE_ZERO_POINTS = (127, 63, -1, -65, -128)


def finite_fp16_scales() -> torch.Tensor:
    """Every finite fp16 value (63488 bit patterns: ±0, subnormals, normals)."""
    bits = torch.arange(-32768, 32768, dtype=torch.int32).to(torch.int16)
    scales = bits.view(torch.float16)
    return scales[torch.isfinite(scales)]


def exhaustive_triple(scales: torch.Tensor):
    """One group of G=64 (codes 0..63) per (scale, zero point): every
    code - zero difference times every given scale."""
    n_zp = len(EXHAUSTIVE_ZERO_POINTS)
    n = scales.numel() * n_zp
    codes = torch.arange(64, dtype=torch.uint8).expand(n, 64)
    qweight = pack_6bit(codes.reshape(n, 1, 64)).reshape(n, 1, 48)
    zp = torch.tensor(EXHAUSTIVE_ZERO_POINTS, dtype=torch.int8).repeat(scales.numel())
    s = scales.repeat_interleave(n_zp)
    return qweight, zp.reshape(n, 1, 1), s.reshape(n, 1, 1)


def random_triple(outer, n_groups, group_size, gen, finite=True):
    """Random bytes and zero points; scales drawn over all fp16 bit patterns
    (finite ones only unless finite=False)."""
    qweight = torch.randint(
        0, 256, (*outer, n_groups, group_size // 4 * 3), dtype=torch.uint8, generator=gen
    )
    zero_point = torch.randint(-128, 128, (*outer, n_groups, 1), dtype=torch.int8, generator=gen)
    bits = torch.randint(0, 1 << 16, (*outer, n_groups, 1), generator=gen)
    if finite:
        bits = torch.where((bits >> 10) & 31 != 31, bits, bits & 0x83FF)
    return qweight, zero_point, bits.to(torch.int16).view(torch.float16)


def expected(qweight, zero_point, scales, dtype):
    """The oracle on the CPU: reference fp16, then .to(dtype)."""
    w = reference.calculate_dequant(qweight.cpu(), zero_point.cpu(), scales.cpu())
    return w.to(dtype)


def _int_view(t: torch.Tensor) -> torch.Tensor:
    return t.view(torch.int32 if t.dtype == torch.float32 else torch.int16)


def assert_same_bits(actual: torch.Tensor, want: torch.Tensor, what: str = ""):
    """Bit patterns equal; where the oracle is NaN only NaN-ness is required
    (torch's own NaN payloads differ between CPU and CUDA)."""
    actual = actual.cpu()
    assert actual.dtype == want.dtype and actual.shape == want.shape, (
        f"{what}: {actual.dtype}{tuple(actual.shape)} vs {want.dtype}{tuple(want.shape)}"
    )
    nan = torch.isnan(want)
    assert torch.equal(torch.isnan(actual), nan), f"{what}: NaN positions differ"
    differ = (_int_view(actual) != _int_view(want)) & ~nan
    n = int(differ.sum())
    if n:
        i = int(differ.flatten().nonzero()[0])
        raise AssertionError(
            f"{what}: {n} of {want.numel()} outputs differ in their bits; first at "
            f"{i}: {hex(int(_int_view(actual).flatten()[i]) & 0xFFFFFFFF)} vs "
            f"{hex(int(_int_view(want).flatten()[i]) & 0xFFFFFFFF)}"
        )

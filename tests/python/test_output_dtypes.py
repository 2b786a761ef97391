"""bf16 and fp32 outputs: the reference's fp16 result converted by torch's
.to(dtype), bit for bit, on every kernel target, incl. NaN and inf scales."""

import pytest
import torch

import q6bit
from q6bit import reference

from conftest import assert_same_bits, random_triple

DTYPES = [torch.float16, torch.bfloat16, torch.float32]
IDS = ["f16", "bf16", "f32"]


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("group_size", [4, 12, 64, 128, 132, 1020])
def test_random_triples_match_reference(group_size, dtype, threads, kernel_target):
    gen = torch.Generator().manual_seed(group_size)
    for outer, n_groups in [((), 1), ((3,), 5), ((2, 3), 67)]:
        q, z, s = random_triple(outer, n_groups, group_size, gen)
        expected = reference.calculate_dequant(q, z, s).to(dtype)
        what = f"{kernel_target} {dtype} G={group_size} outer={outer}"
        assert_same_bits(q6bit.dequantize(q, z, s, dtype=dtype), expected, what)
        assert_same_bits(
            q6bit.dequantize(q, z, s, dtype=dtype, huge_pages=False),
            expected,
            what + " torch.empty",
        )
        out = torch.empty(expected.numel(), dtype=dtype)
        assert_same_bits(q6bit.ops.dequantize_into(q, z, s, out), expected, what + " into")


def every_fp16_as_a_result():
    """Triples whose fp16 results are all 65536 fp16 bit patterns, each
    scale times code - zero_point = 1 (NaNs come out quiet)."""
    scales = torch.arange(1 << 16, dtype=torch.int32).to(torch.int16).view(torch.float16)
    codes = torch.ones(scales.numel(), 4, dtype=torch.uint8)
    return (
        q6bit.pack_6bit(codes),
        torch.zeros(scales.numel(), 1, dtype=torch.int8),
        scales.reshape(-1, 1),
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_every_fp16_pattern_converts_as_torch_does(dtype, kernel_target):
    q, z, s = every_fp16_as_a_result()
    ref16 = reference.calculate_dequant(q, z, s)
    assert torch.isnan(ref16).sum() == 4 * 2046  # every NaN scale
    assert_same_bits(
        q6bit.dequantize(q, z, s, dtype=dtype), ref16.to(dtype), f"{kernel_target} {dtype}"
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_non_finite_scales_match_reference(dtype, kernel_target):
    """Every inf / NaN scale (NaN payloads kept as torch keeps them) times
    every reachable code - zero_point, incl. inf * 0."""
    bits = torch.tensor([b for b in range(1 << 16) if (b >> 10) & 31 == 31], dtype=torch.int32).to(
        torch.int16
    )
    zero_points = torch.tensor([127, 63, 0, -1, -65, -128], dtype=torch.int8)
    s = bits.view(torch.float16).repeat_interleave(len(zero_points)).reshape(-1, 1)
    z = zero_points.repeat(len(bits)).reshape(-1, 1)
    q = q6bit.pack_6bit(torch.arange(64, dtype=torch.uint8).expand(len(s), 64))
    expected = reference.calculate_dequant(q, z, s).to(dtype)
    assert torch.isnan(expected).any() and torch.isinf(expected).any()
    assert_same_bits(q6bit.dequantize(q, z, s, dtype=dtype), expected, f"{kernel_target} {dtype}")


def test_nan_scales_keep_their_payload_in_fp16():
    """The reference keeps a NaN scale's payload (made quiet); so do we."""
    s = torch.tensor([[0x7C01], [0xFD55 - 0x10000]], dtype=torch.int16).view(torch.float16)
    q = q6bit.pack_6bit(torch.full((2, 4), 5, dtype=torch.uint8))
    z = torch.zeros(2, 1, dtype=torch.int8)
    ref = reference.calculate_dequant(q, z, s).view(torch.int16)
    assert ref[0].item() == 0x7E01 and ref[4].item() == 0xFF55 - 0x10000
    assert torch.equal(q6bit.dequantize(q, z, s).view(torch.int16), ref)


def test_reference_backend_converts_too():
    gen = torch.Generator().manual_seed(3)
    q, z, s = random_triple((2,), 3, 128, gen)
    for dtype in DTYPES:
        assert_same_bits(
            q6bit.dequantize(q, z, s, backend="reference", dtype=dtype),
            reference.calculate_dequant(q, z, s).to(dtype),
        )


def test_meta_shapes_and_dtypes():
    q = torch.empty(7, 3, 48, dtype=torch.uint8, device="meta")
    z = torch.empty(7, 3, 1, dtype=torch.int8, device="meta")
    s = torch.empty(7, 3, 1, dtype=torch.float16, device="meta")
    for dtype in DTYPES:
        out = torch.ops.q6bit.dequantize(q, z, s, dtype=dtype)
        assert out.shape == (7, 192) and out.dtype == dtype and out.device.type == "meta"
    out = torch.empty(7 * 192, dtype=torch.bfloat16, device="meta")
    assert torch.ops.q6bit.dequantize.out(q, z, s, out=out).shape == (7, 192)
    assert torch.ops.q6bit.unpack(q).shape == (7, 3, 64)
    [w] = torch.ops.q6bit.dequantize_list([q], [z], [s])
    assert w.shape == (7, 192) and w.dtype == torch.float16


@pytest.mark.parametrize("backend", ["fast", "reference"])
@pytest.mark.parametrize("n_groups", [1, 3, 64])
def test_fp32_nans_are_the_fp16_nans_widened_exactly(backend, n_groups):
    """Found by tests/fuzz/test_ops_property.py: torch's fp16 -> fp32 copy
    turns NaNs into 0x7FFFFFFF in the scalar tail of its loop (a 4-element
    tensor here), so `.to(float32)` of the reference depended on the length.
    Both backends give sign | 0x7F800000 | payload << 13 at any length."""
    s = torch.full((n_groups, 1), 0xFD55 - 0x10000, dtype=torch.int16).view(torch.float16)
    q = q6bit.pack_6bit(torch.full((n_groups, 4), 5, dtype=torch.uint8))
    z = torch.zeros(n_groups, 1, dtype=torch.int8)
    w = q6bit.dequantize(q, z, s, backend=backend, dtype=torch.float32)
    assert (w.view(torch.int32) == 0xFFEAA000 - (1 << 32)).all()

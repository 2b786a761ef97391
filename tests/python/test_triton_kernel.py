"""The Triton kernel against the reference, bit for bit, launched directly.

Runs on CUDA tensors where a GPU is present (full size), or on CPU tensors
under Triton's interpreter when TRITON_INTERPRET=1 was set before Triton was
imported (test_triton.py starts such a pytest; smaller random cases there).
"""

from __future__ import annotations

import importlib.util
import os

import pytest
import torch
from triton_cases import (
    OUT_DTYPES,
    assert_same_bits,
    exhaustive_triple,
    expected,
    finite_fp16_scales,
    random_triple,
)

from q6bit import reference

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
if importlib.util.find_spec("triton") is None:
    pytest.skip("triton is not installed", allow_module_level=True)
if not INTERPRET and not torch.cuda.is_available():
    pytest.skip(
        "no CUDA device; the interpreter run of this file is started by test_triton.py",
        allow_module_level=True,
    )

from q6bit import triton_dequant as td  # noqa: E402  (after the skips: imports triton)

DEVICE = "cpu" if INTERPRET else "cuda"
# The interpreter pays per program: fewer, larger ones there (same kernel).
BLOCK = 1024 if INTERPRET else None
SIZE = 1 if INTERPRET else 8  # random cases scale up on the GPU


def run(qweight, zero_point, scales, dtype):
    return td.dequantize(
        qweight.to(DEVICE), zero_point.to(DEVICE), scales.to(DEVICE), dtype, block_groups=BLOCK
    )


@pytest.fixture(scope="module")
def exhaustive():
    q, zp, s = exhaustive_triple(finite_fp16_scales())
    codes = reference.unsqueeze_from_6bit(q)  # the cases hold codes 0..63 in order
    assert torch.equal(codes, torch.arange(64, dtype=torch.uint8).expand_as(codes))
    return q, zp, s


@pytest.mark.parametrize("dtype", OUT_DTYPES, ids=str)
def test_every_difference_times_every_finite_scale(exhaustive, dtype):
    q, zp, s = exhaustive
    assert_same_bits(run(q, zp, s, dtype), expected(q, zp, s, dtype), str(dtype))


@pytest.mark.parametrize("group_size", [4, 8, 12, 36, 64, 128, 132, 256, 260])
@pytest.mark.parametrize("outer", [(), (5,), (3, 7), (2, 3, 5)], ids=str)
def test_group_sizes_and_outer_shapes(group_size, outer):
    # n_groups not a multiple of the groups a program takes: a tail program.
    gen = torch.Generator().manual_seed(group_size * 31 + len(outer))
    q, zp, s = random_triple((*outer[:-1], outer[-1] * SIZE) if outer else (), 37, group_size, gen)
    for dtype in OUT_DTYPES:
        assert_same_bits(
            run(q, zp, s, dtype), expected(q, zp, s, dtype), f"G={group_size} outer={outer} {dtype}"
        )


@pytest.mark.parametrize("n_groups", [1, 2, 3, 31, 33, 1023, 1025])
def test_tails(n_groups):
    gen = torch.Generator().manual_seed(n_groups)
    q, zp, s = random_triple((), n_groups, 128, gen)
    assert_same_bits(run(q, zp, s, torch.float16), expected(q, zp, s, torch.float16))


def test_specials_subnormal_zero_overflow_inf_nan():
    # Scales: ±0, smallest/largest subnormal, smallest normal, 1, largest
    # finite (overflows to inf for |code - zero| > 1), ±inf, NaN.
    bits = [
        0x0000,
        0x8000,
        0x0001,
        0x8001,
        0x03FF,
        0x0400,
        0x3C00,
        0x7BFF,
        0xFBFF,
        0x7C00,
        0xFC00,
        0x7E00,
        0xFE01,
    ]
    gen = torch.Generator().manual_seed(5)
    q, zp, _ = random_triple((), len(bits), 132, gen)
    s = torch.tensor(bits, dtype=torch.int32).to(torch.int16).view(torch.float16)
    s = s.reshape(-1, 1)
    zp[0::2] = 0  # code 0 - 0 = 0: 0 * inf is NaN, 0 * subnormal is ±0
    for dtype in OUT_DTYPES:
        got, want = run(q, zp, s, dtype), expected(q, zp, s, dtype)
        assert torch.isinf(want).any() and torch.isnan(want).any()
        assert_same_bits(got, want, str(dtype))


def test_out_into_given_tensor_and_errors():
    gen = torch.Generator().manual_seed(9)
    q, zp, s = (t.to(DEVICE) for t in random_triple((4,), 3, 12, gen))
    out = torch.full((4 * 36,), float("nan"), dtype=torch.bfloat16, device=DEVICE)
    res = td.dequantize_into(q, zp, s, out, block_groups=BLOCK)
    assert res.shape == (4, 36) and res.data_ptr() == out.data_ptr()
    assert_same_bits(res, expected(q, zp, s, torch.bfloat16))
    with pytest.raises(ValueError, match="elements"):
        td.dequantize_into(q, zp, s, out[:-1])
    with pytest.raises(ValueError, match="dtype"):
        td.dequantize_into(q, zp, s, out.to(torch.float64))
    with pytest.raises(ValueError, match="contiguous"):
        td.dequantize_into(q.transpose(0, 1), zp.transpose(0, 1), s.transpose(0, 1), out)
    with pytest.raises(ValueError, match="shape"):
        td.dequantize_into(q, zp[:, :2], s, out)


def test_empty():
    q = torch.empty(0, 4, 96, dtype=torch.uint8, device=DEVICE)
    zp = torch.empty(0, 4, 1, dtype=torch.int8, device=DEVICE)
    s = torch.empty(0, 4, 1, dtype=torch.float16, device=DEVICE)
    assert run(q, zp, s, torch.float16).shape == (0, 512)


def _mixed_list(scale):
    """A model-shaped list: mixed group sizes (word and byte kernels), 1-D to
    3-D outer dims, an empty tensor, and a qweight at an odd address."""
    gen = torch.Generator().manual_seed(11)
    specs = [
        ((4 * scale,), 5, 128),
        ((3, 2 * scale), 3, 64),
        ((scale,), 7, 36),
        ((2, 3, scale), 2, 128),
        ((0,), 4, 128),
        ((2 * scale,), 3, 260),
        ((scale,), 9, 132),
        ((3 * scale,), 6, 128),
        ((5 * scale,), 1, 64),
    ]
    return [random_triple(outer, n, g, gen) for outer, n, g in specs]


def mixed_list_on(device, scale):
    """(triples on the CPU, the same on `device` with the last qweight at an
    address that is not a multiple of 4, which the word kernel cannot read)."""
    triples = _mixed_list(scale)
    on_device = [tuple(t.to(device) for t in triple) for triple in triples]
    q, zp, s = on_device[-1]
    odd = torch.empty(q.numel() + 1, dtype=torch.uint8, device=device)[1:].view(q.shape)
    odd.copy_(q)
    on_device[-1] = (odd, zp, s)
    return triples, on_device


@pytest.mark.parametrize("flush", [None, 1], ids=["one_launch_per_G", "launch_per_tensor"])
def test_list_mixed_group_sizes(monkeypatch, flush):
    from q6bit import triton_dequant_list as tdl

    if flush:
        monkeypatch.setattr(tdl, "FLUSH_WEIGHTS", flush)
    triples, on_device = mixed_list_on(DEVICE, SIZE)
    assert on_device[-1][0].data_ptr() % 4
    # Few groups a program: several programs a tensor, tails, the search.
    got = tdl.dequantize_list(*map(list, zip(*on_device)), block_groups=2 if INTERPRET else None)
    assert len(got) == len(triples)
    for i, (w, triple) in enumerate(zip(got, triples)):
        if triple[0].numel() == 0:  # the reference cannot reshape an empty tensor
            assert w.shape == (0, 4 * 128) and w.dtype == torch.float16
            continue
        assert_same_bits(w, expected(*triple, torch.float16), f"tensor {i}")


def test_list_errors_name_the_tensor():
    from q6bit import triton_dequant_list as tdl

    gen = torch.Generator().manual_seed(2)
    a = [t.to(DEVICE) for t in random_triple((2,), 3, 64, gen)]
    assert tdl.dequantize_list([], [], []) == []
    with pytest.raises(ValueError, match="pair up"):
        tdl.dequantize_list([a[0]], [], [a[2]])
    with pytest.raises(ValueError, match=r"dequantize_list\[1\].*shape"):
        tdl.dequantize_list([a[0], a[0]], [a[1], a[1][:, :2]], [a[2], a[2]])

"""Property fuzzer (hypothesis) of the ops against q6bit/reference.py: any
shape, group size, zero points, and scales of any bit pattern (subnormal,
+-0, +-inf, NaN with any payload), every output dtype, every kernel target
this CPU runs, 1 or 2 threads, each entry point: the weights must equal the
reference's as bit patterns. Findings become @example lines here and a
regression test in tests/python."""

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

import q6bit
from q6bit import reference
from q6bit.ops import dequantize_into, dequantize_list

BITS = {torch.float16: torch.int16, torch.bfloat16: torch.int16, torch.float32: torch.int32}
SPECIAL_SCALES = [
    0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x0400, 0x3C00, 0x7BFF, 0xFBFF,
    0x7C00, 0xFC00, 0x7C01, 0x7E00, 0x7FFF, 0xFE00, 0xFFFF, 0x7D55,
]  # fmt: skip
TARGETS = q6bit.kernel_targets()


@st.composite
def triples(draw):
    outer = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    n_groups = draw(st.integers(1, 6))
    group_size = 4 * draw(st.integers(1, 80))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**32)))
    shape = (*outer, n_groups)
    qweight = torch.randint(0, 256, (*shape, group_size // 4 * 3), dtype=torch.uint8, generator=gen)
    zero_point = torch.randint(-128, 128, (*shape, 1), dtype=torch.int8, generator=gen)
    mode = draw(st.sampled_from(["random bits", "special", "small"]))
    if mode == "random bits":
        bits = torch.randint(0, 1 << 16, (*shape, 1), generator=gen)
    elif mode == "special":
        pick = torch.randint(0, len(SPECIAL_SCALES), (*shape, 1), generator=gen)
        bits = torch.tensor(SPECIAL_SCALES)[pick]
    else:  # subnormal and tiny normal scales: results in fp16's subnormal range
        bits = torch.randint(0, 0x0800, (*shape, 1), generator=gen) | (
            torch.randint(0, 2, (*shape, 1), generator=gen) << 15
        )
    scales = bits.to(torch.int32).to(torch.int16).view(torch.float16)
    return qweight, zero_point, scales.clone()


def exactly_as(ref16, dtype):
    """The reference's fp16 weight as dtype: torch's .to, but fp32 NaNs widened
    exactly (torch's fp16 -> fp32 copy gives 0x7FFFFFFF for NaNs shorter than
    a vector: the first finding of this fuzzer, tests/python/test_output_dtypes.py)."""
    out = ref16.to(dtype)
    if dtype == torch.float32:
        for i in torch.isnan(ref16).flatten().nonzero().flatten().tolist():
            b = ref16.flatten()[i : i + 1].view(torch.int16).item() & 0xFFFF
            bits = (b & 0x8000) << 16 | 0x7F800000 | (b & 0x3FF) << 13
            out.view(-1)[i] = (
                torch.tensor([bits - (1 << 32) if bits >> 31 else bits])
                .to(torch.int32)
                .view(torch.float32)[0]
            )
    return out


def same_bits(actual, expected):
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    bits = BITS[actual.dtype]
    differ = actual.view(bits) != expected.view(bits)
    assert not differ.any(), f"{int(differ.sum())} of {actual.numel()} differ"


@pytest.fixture(autouse=True)
def restore_target_and_threads():
    threads = torch.get_num_threads()
    yield
    q6bit.force_kernel_target("")
    torch.set_num_threads(threads)


@given(
    triple=triples(),
    dtype=st.sampled_from(list(BITS)),
    target=st.sampled_from(TARGETS),
    threads=st.sampled_from([1, 2]),
    entry=st.sampled_from(["op", "out", "list"]),
)
@example(  # NaN payloads on the SSE4/SSSE3/SCALAR targets (issue 12)
    triple=(
        torch.full((1, 4 * 3 // 4 * 3), 0x41, dtype=torch.uint8)[:, :3],
        torch.zeros((1, 1), dtype=torch.int8),
        torch.tensor([[0x7D55]], dtype=torch.int16).view(torch.float16),
    ),
    dtype=torch.float16,
    target="SCALAR",
    threads=1,
    entry="op",
)
def test_ops_equal_the_reference_bit_for_bit(triple, dtype, target, threads, entry):
    if target not in TARGETS:  # an @example for a target this CPU lacks
        return
    q6bit.force_kernel_target(target)
    torch.set_num_threads(threads)
    qweight, zero_point, scales = triple
    expected = exactly_as(reference.calculate_dequant(qweight, zero_point, scales), dtype)
    if entry == "op":
        got = q6bit.dequantize(qweight, zero_point, scales, dtype=dtype)
    elif entry == "out":
        got = dequantize_into(
            qweight, zero_point, scales, torch.empty(expected.numel(), dtype=dtype)
        )
    else:
        if dtype != torch.float16:
            return  # dequantize_list gives fp16 only
        got = dequantize_list([(qweight, zero_point, scales)] * 2)[1]
    same_bits(got, expected)

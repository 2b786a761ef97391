"""torch.ops.q6bit vs q6bit.reference, compared as bit patterns, on every
kernel target this CPU runs, at 1 and 2 threads."""

import pytest
import torch

import q6bit
from q6bit import reference

from conftest import assert_same_bits, random_triple

GROUP_SIZES = [4, 8, 12, 20, 36, 64, 100, 128, 132, 252, 256, 516, 1020, 1024]
OUTER_SHAPES = [(), (3,), (2, 3), (2, 1, 3)]  # 1-D ... 4-D of groups


@pytest.mark.parametrize("group_size", GROUP_SIZES)
def test_random_triples_match_reference(group_size, threads, kernel_target):
    gen = torch.Generator().manual_seed(group_size)
    for outer in OUTER_SHAPES:
        for n_groups in (1, 5, 67):
            q, z, s = random_triple(outer, n_groups, group_size, gen)
            what = f"{kernel_target} G={group_size} outer={outer} groups={n_groups}"
            assert_same_bits(q6bit.dequantize(q, z, s), reference.calculate_dequant(q, z, s), what)
            codes = q6bit.unpack(q)
            assert torch.equal(codes, reference.unsqueeze_from_6bit(q)), what


def test_special_results(threads, kernel_target):
    """Subnormal, negative, +-0 and overflow-to-inf results, including every
    code - zero_point against the extreme and tiny scales."""
    scales = torch.tensor(
        [
            0.0,
            -0.0,
            2.0**-24,
            -(2.0**-24),
            2.0**-14,
            6e-5,
            -6e-5,
            1.0,
            -1.0,
            0.1,
            343.0,
            345.0,
            65504.0,
            -65504.0,
            1000.0,
            -1000.0,
        ],
        dtype=torch.float16,
    )
    codes = torch.arange(64, dtype=torch.uint8)
    zero_points = torch.tensor([127, 63, 0, -1, -65, -128], dtype=torch.int8)
    rows = [(s, zp) for s in scales for zp in zero_points]
    packed = q6bit.pack_6bit(codes.expand(len(rows), 64))
    z = torch.stack([zp for _, zp in rows]).reshape(-1, 1)
    s = torch.stack([sc for sc, _ in rows]).reshape(-1, 1)
    ours = q6bit.dequantize(packed, z, s)
    ref = reference.calculate_dequant(packed, z, s)
    assert_same_bits(ours, ref, kernel_target)
    assert torch.isinf(ref).any() and (ref.view(torch.int16) == -32768).any()
    assert ((ref != 0) & (ref.abs() < 2.0**-14)).any()  # subnormals occur


def test_unpack_shape_is_groups_by_codes():
    q = torch.zeros(2, 3, 96, dtype=torch.uint8)
    assert q6bit.unpack(q).shape == (2, 3, 128)
    assert q6bit.dequantize(
        q, torch.zeros(2, 3, 1, dtype=torch.int8), torch.ones(2, 3, 1, dtype=torch.float16)
    ).shape == (2, 384)


def test_empty_tensors():
    q = torch.zeros(0, 4, 96, dtype=torch.uint8)
    out = q6bit.dequantize(
        q, torch.zeros(0, 4, 1, dtype=torch.int8), torch.zeros(0, 4, 1, dtype=torch.float16)
    )
    assert out.shape == (0, 512) and out.dtype == torch.float16


def test_meta_tensors_give_shapes():
    q = torch.empty(7, 3, 48, dtype=torch.uint8, device="meta")
    z = torch.empty(7, 3, 1, dtype=torch.int8, device="meta")
    s = torch.empty(7, 3, 1, dtype=torch.float16, device="meta")
    assert torch.ops.q6bit.dequantize(q, z, s).shape == (7, 192)


def test_seed_aliases_are_the_fast_ops():
    assert q6bit.calculate_dequant is q6bit.dequantize
    assert q6bit.unsqueeze_from_6bit is q6bit.unpack


def test_reference_backend_is_selectable():
    gen = torch.Generator().manual_seed(1)
    q, z, s = random_triple((), 3, 128, gen)
    assert_same_bits(
        q6bit.dequantize(q, z, s, backend="reference"), reference.calculate_dequant(q, z, s)
    )


def test_result_is_an_ordinary_tensor():
    gen = torch.Generator().manual_seed(2)
    q, z, s = random_triple((4,), 2, 128, gen)
    out = q6bit.dequantize(q, z, s)
    assert out.is_contiguous() and out.device.type == "cpu"
    out.resize_(8, 1000)  # resizable, owns its storage
    out.fill_(1.0)


def test_large_outputs_are_ordinary_tensors():
    """Large outputs live in their own huge-page mapping; they must still
    behave like any tensor: resizable, viewable, picklable, freed."""
    import gc
    import pickle

    gen = torch.Generator().manual_seed(5)
    q, z, s = random_triple((64,), 400, 128, gen)  # 6.5 MB of fp16
    out = q6bit.dequantize(q, z, s)
    ref = reference.calculate_dequant(q, z, s)
    assert_same_bits(out, ref)
    view = out[3:5]
    assert_same_bits(pickle.loads(pickle.dumps(out)), ref)
    out.resize_(out.numel() * 2)  # grows: moves to torch's allocator
    assert_same_bits(out[: ref.numel()].view(ref.shape), ref)
    assert_same_bits(view, ref[3:5])  # the old view kept its data alive
    del out, view
    gc.collect()


def test_both_allocations_give_the_same_bits():
    """huge_pages=False (torch's allocator, ordinary stores), for callers
    that free each output before the next, must give the same weights."""
    gen = torch.Generator().manual_seed(9)
    q, z, s = random_triple((64,), 400, 128, gen)  # large enough for a mapping
    ref = reference.calculate_dequant(q, z, s)
    assert_same_bits(q6bit.dequantize(q, z, s, huge_pages=True), ref)
    assert_same_bits(q6bit.dequantize(q, z, s, huge_pages=False), ref)


def test_huge_page_mappings_are_freed():
    from pathlib import Path

    gen = torch.Generator().manual_seed(6)
    q, z, s = random_triple((64,), 400, 128, gen)

    def mappings():
        return len(Path("/proc/self/maps").read_text().splitlines())

    q6bit.dequantize(q, z, s)
    before = mappings()
    for _ in range(20):
        out = q6bit.dequantize(q, z, s)
        del out
    assert mappings() <= before + 2


def test_dequantize_list_matches_reference(threads, kernel_target):
    """One parallel region over many tensors of different group sizes."""
    gen = torch.Generator().manual_seed(8)
    triples = [
        random_triple(outer, groups, g, gen)
        for outer, groups, g in [
            ((3,), 700, 128),
            ((), 5, 4),
            ((2, 2), 33, 132),
            ((1,), 1, 1024),
            ((40,), 300, 64),
        ]
    ]
    outs = torch.ops.q6bit.dequantize_list(*[list(x) for x in zip(*triples)])
    for (q, z, s), out in zip(triples, outs):
        assert_same_bits(out, reference.calculate_dequant(q, z, s), kernel_target)


def test_kernels_really_run_in_parallel():
    """A build without -fopenmp runs at::parallel_for on one thread."""
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert q6bit.ops.parallel_threads() == 2
    finally:
        torch.set_num_threads(before)

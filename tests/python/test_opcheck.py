"""torch.library.opcheck on every q6bit op: schema (mutation, aliasing),
autograd registration, fake (Meta) implementations against the CPU kernels,
and AOT dispatch with dynamic shapes."""

import pytest
import torch

import q6bit  # noqa: F401  (loads the ops and their fakes)

from conftest import random_triple

q6bit.kernel_target()


def triples():
    gen = torch.Generator().manual_seed(11)
    return [
        random_triple(outer, groups, g, gen)
        for outer, groups, g in [((), 3, 128), ((2,), 5, 12), ((2, 3), 1, 4)]
    ]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_dequantize(dtype):
    for q, z, s in triples():
        torch.library.opcheck(torch.ops.q6bit.dequantize.default, (q, z, s), {"dtype": dtype})


# test_aot_dispatch_dynamic is left out for dequantize.out only: its schema
# (fixed by the interface: `-> Tensor(a!)`, as ATen's out= ops) returns an
# alias of `out`, which torch's functionalization refuses for every custom
# op ("Found a custom (non-ATen) operator whose output has alias
# annotations"), whatever the implementation.
OUT_TEST_UTILS = ("test_schema", "test_autograd_registration", "test_faketensor")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_dequantize_out(dtype):
    for q, z, s in triples():
        out = torch.empty(q.numel() // 3 * 4, dtype=dtype)
        torch.library.opcheck(
            torch.ops.q6bit.dequantize.out, (q, z, s), {"out": out}, test_utils=OUT_TEST_UTILS
        )


@pytest.mark.parametrize("huge_pages", [True, False])
def test_dequantize_compiles_fullgraph(huge_pages):
    """q6bit.dequantize under torch.compile (fullgraph, dynamic shapes), as
    packed mode's embedding lookups run in a compiled vLLM model: the same
    bits as eager, with either allocation choice."""
    fn = torch.compile(
        lambda q, z, s: q6bit.dequantize(q, z, s, dtype=torch.bfloat16, huge_pages=huge_pages),
        fullgraph=True,
        dynamic=True,
        backend="aot_eager",
    )
    for q, z, s in triples()[:2]:
        want = q6bit.dequantize(q, z, s, dtype=torch.bfloat16)
        assert torch.equal(fn(q, z, s).view(torch.int16), want.view(torch.int16))


def test_dequantize_list():
    qs, zs, ss = (list(x) for x in zip(*triples()))
    torch.library.opcheck(torch.ops.q6bit.dequantize_list.default, (qs, zs, ss))


def test_unpack():
    for q, _, _ in triples():
        torch.library.opcheck(torch.ops.q6bit.unpack.default, (q,))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("m", [1, 40], ids=["gemv", "tiled"])
def test_linear(dtype, m):
    q, z, s = random_triple((5,), 3, 12, torch.Generator().manual_seed(2))
    s = (s.float().clamp(-1, 1) * 1e-3).half()  # finite sums
    x = torch.randn(m, 36).to(dtype)
    for bias in (None, torch.randn(5).to(dtype)):
        torch.library.opcheck(torch.ops.q6bit.linear.default, (x, q, z, s, bias))
    torch.library.opcheck(torch.ops.q6bit.linear.default, (x.view(m, 1, 36), q, z, s))

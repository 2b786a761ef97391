"""Gradients of the dequantize ops (issue 12): d loss / d scales arrives,
equal to the reference formula differentiated by autograd in float64
(the fp16 rounding taken as identity); opcheck with scales requiring grad;
dequantize.out refuses, as torch's out= ops do."""

import pytest
import torch

import q6bit
from q6bit import reference

from conftest import random_triple

q6bit.kernel_target()
DTYPES = [torch.float16, torch.bfloat16, torch.float32]


def small_triple(seed, outer=(2,), n_groups=3, group_size=16):
    gen = torch.Generator().manual_seed(seed)
    q, z, _ = random_triple(outer, n_groups, group_size, gen)
    s = (torch.randn(*outer, n_groups, 1, generator=gen) * 0.01).half()
    return q, z, s, gen


def float64_reference_grad(q, z, s, grad_out):
    """autograd of the reference formula (codes - zero_point) * scales in
    float64; also the sum of |terms| of each group (bounds float32's
    rounding error in ours)."""
    s64 = s.detach().double().requires_grad_()
    codes = reference.unsqueeze_from_6bit(q).double()
    w = ((codes - z.double()) * s64).reshape(grad_out.shape)
    (w * grad_out.double()).sum().backward()
    terms = ((codes - z.double()) * grad_out.double().reshape(codes.shape)).abs().sum(-1, True)
    return s64.grad, terms


def close_in_fp16(ours, expected):
    """Ours sums in float32 and rounds once to fp16: within one fp16 ulp of
    the float64 value, plus float32's summation error."""
    expected, terms = expected
    assert ours.dtype == torch.float16 and ours.shape == expected.shape
    ulp = torch.exp2(torch.floor(torch.log2(expected.abs().clamp_min(2**-14))) - 10)
    error = (ours.double() - expected).abs()
    assert (error <= ulp + 1e-6 * terms).all(), (error - ulp).max()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [((), 1, 4), ((2,), 3, 16), ((2, 3), 2, 128)])
def test_dequantize_gradient_matches_the_float64_reference(dtype, shape):
    q, z, s, gen = small_triple(1, *shape)
    s.requires_grad_()
    w = torch.ops.q6bit.dequantize(q, z, s, dtype=dtype)
    assert w.requires_grad
    grad_out = torch.randn(w.shape, generator=gen).to(dtype)
    w.backward(grad_out)
    assert s.grad is not None
    close_in_fp16(s.grad, float64_reference_grad(q, z, s, grad_out))


def test_library_dequantize_and_list_differentiate_too():
    q, z, s, gen = small_triple(2)
    grad_out = torch.randn(2, 48, generator=gen).half()
    expected = float64_reference_grad(q, z, s, grad_out)
    for call in (
        lambda s: q6bit.dequantize(q, z, s),
        lambda s: q6bit.dequantize(q, z, s, huge_pages=False),
        lambda s: torch.ops.q6bit.dequantize_list([q, q], [z, z], [s.detach(), s])[1],
    ):
        leaf = s.detach().requires_grad_()
        call(leaf).backward(grad_out)
        close_in_fp16(leaf.grad, expected)


def test_no_gradient_is_asked_for_when_scales_do_not_require_it():
    q, z, s, _ = small_triple(3)
    assert not torch.ops.q6bit.dequantize(q, z, s).requires_grad


def test_dequantize_out_refuses_scales_that_require_grad():
    q, z, s, _ = small_triple(4)
    out = torch.empty(q.numel() // 3 * 4, dtype=torch.float16)
    with pytest.raises(RuntimeError, match="q6bit.dequantize.out: scales requires grad"):
        torch.ops.q6bit.dequantize.out(q, z, s.requires_grad_(), out=out)
    torch.ops.q6bit.dequantize.out(q, z, s.detach(), out=out)  # fine without


@pytest.mark.parametrize("dtype", DTYPES)
def test_opcheck_with_scales_requiring_grad(dtype):
    q, z, s, _ = small_triple(5)
    torch.library.opcheck(
        torch.ops.q6bit.dequantize.default, (q, z, s.requires_grad_()), {"dtype": dtype}
    )
    torch.library.opcheck(
        torch.ops.q6bit.dequantize_list.default, ([q], [z], [s.detach().requires_grad_()])
    )

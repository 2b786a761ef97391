"""Backward of torch.ops.q6bit.dequantize and dequantize_list: the gradient
reaches `scales` (the only differentiable input; qweight and zero_point are
integers). With w = round_fp16((code - zero_point) * scale) and the rounding
taken as identity (straight-through),
    d loss / d scale[g] = sum over the group's i of grad_w[i] * (code_i - zero_point[g]),
summed in float32 and returned in scales' dtype. dequantize.out (an out=
op) does not differentiate, as torch's own out= ops."""

from __future__ import annotations

import torch

from . import _C  # noqa: F401  (defines the ops registered below)


def scales_grad(grad, qweight, zero_point, scales):
    codes = torch.ops.q6bit.unpack(qweight)  # [..., n_groups, G] uint8
    diff = codes.to(torch.float32) - zero_point.to(torch.float32)
    grad = grad.reshape(diff.shape).to(torch.float32)
    return (grad * diff).sum(-1, keepdim=True).to(scales.dtype)


def _setup(ctx, inputs, keyword_only_inputs, output):
    qweight, zero_point, scales = inputs[:3]
    ctx.save_for_backward(qweight, zero_point, scales)


def _backward(ctx, grad):
    qweight, zero_point, scales = ctx.saved_tensors
    if not ctx.needs_input_grad[2]:
        return None, None, None
    return None, None, scales_grad(grad, qweight, zero_point, scales)


def _setup_list(ctx, inputs, output):
    qweights, zero_points, scales = inputs
    ctx.triples = list(zip(qweights, zero_points, scales))


def _backward_list(ctx, grads):
    none = [None] * len(ctx.triples)  # one per tensor of each list input
    return (
        none,
        none,
        [
            None if g is None or not s.requires_grad else scales_grad(g, q, z, s)
            for g, (q, z, s) in zip(grads, ctx.triples)
        ],
    )


torch.library.register_autograd("q6bit::dequantize", _backward, setup_context=_setup)
torch.library.register_autograd("q6bit::dequantize_list", _backward_list, setup_context=_setup_list)


def _out_autograd(qweight, zero_point, scales, *, out):
    if torch.is_grad_enabled() and scales.requires_grad:
        raise RuntimeError(
            "q6bit.dequantize.out: scales requires grad, but an out= op does not "
            "differentiate (as torch's own out= ops); use q6bit.dequantize, or pass "
            "scales.detach()"
        )
    with torch._C._AutoDispatchBelowAutograd():
        return torch.ops.q6bit.dequantize.out(qweight, zero_point, scales, out=out)


_lib = torch.library.Library("q6bit", "IMPL")
_lib.impl("dequantize.out", _out_autograd, "Autograd")

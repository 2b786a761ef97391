"""quantize(): the inverse of dequantization, for tests and the quantizer.

Min/max asymmetric per group with 0 always inside the range (so the zero
point is an exact code in 0..63 and zeros stay exact), scale stored as fp16,
codes rounded half-to-even. Deterministic: the same weight gives the same
bytes on every host.
"""

from __future__ import annotations

import torch

from . import layout as fmt

MAX_CODE = (1 << fmt.CODE_BITS) - 1  # 63


def pack_6bit(codes: torch.Tensor) -> torch.Tensor:
    """uint8 codes [..., G] (values 0..63) -> packed uint8 [..., 3*G/4]."""
    c = codes.to(torch.int32).reshape(*codes.shape[:-1], -1, fmt.CODES_PER_TRIPLET)
    v = c[..., 0] | (c[..., 1] << 6) | (c[..., 2] << 12) | (c[..., 3] << 18)
    packed = torch.stack((v & 0xFF, (v >> 8) & 0xFF, (v >> 16) & 0xFF), dim=-1)
    return packed.to(torch.uint8).reshape(*codes.shape[:-1], -1)


def quantize(weight: torch.Tensor, group_size: int = fmt.DEFAULT_GROUP_SIZE):
    """weight [..., K] (K a multiple of group_size) -> (qweight, zero_point,
    scales) in the q6bit layout."""
    fmt.check_group_size(group_size)
    if weight.dim() < 1 or weight.shape[-1] % group_size:
        raise ValueError(
            f"last dim of weight {tuple(weight.shape)} is not a "
            f"multiple of the group size {group_size}"
        )
    if not weight.is_floating_point():
        raise ValueError(f"weight must be floating point, got {weight.dtype}")
    w = weight.detach().to(torch.float32).reshape(*weight.shape[:-1], -1, group_size)
    if not torch.isfinite(w).all():
        raise ValueError("weight has non-finite values; they cannot be quantized")
    lo = w.amin(dim=-1, keepdim=True).clamp(max=0)
    hi = w.amax(dim=-1, keepdim=True).clamp(min=0)
    scale = ((hi - lo) / MAX_CODE).to(torch.float16)
    if torch.isinf(scale).any():
        raise ValueError("weight range exceeds what an fp16 scale can hold")
    # An all-zero group (or one whose range underflows fp16) gets scale 1.
    scale = torch.where(scale == 0, torch.ones_like(scale), scale)
    s = scale.to(torch.float32)
    zero_point = torch.round(-lo / s).clamp(0, MAX_CODE)
    codes = torch.round(w / s + zero_point).clamp(0, MAX_CODE).to(torch.uint8)
    return pack_6bit(codes), zero_point.to(torch.int8), scale

"""The reference semantics in plain PyTorch: the oracle of every test.

These three functions are what the original task shipped (the seed). Their
result is the definition of correct: q6bit's kernels must match them bit for
bit. Keep them simple and literal; never "optimize" them.
"""

from __future__ import annotations

import torch

from . import layout as fmt


def unsqueeze_from_6bit(qweight: torch.Tensor) -> torch.Tensor:
    """Packed uint8 [..., n_groups, 3*G/4] -> codes uint8 [..., n_groups, G]."""
    b = qweight.reshape(*qweight.shape[:-1], -1, 3)
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    v0 = b0 & 63
    v1 = ((b1 & 15) << 2) | (b0 >> 6)
    v2 = ((b2 & 3) << 4) | (b1 >> 4)
    v3 = b2 >> 2
    return torch.stack((v0, v1, v2, v3), dim=-1).reshape(*qweight.shape[:-1], -1)


def calculate_dequant(
    qweight: torch.Tensor, zero_point: torch.Tensor, scales: torch.Tensor
) -> torch.Tensor:
    """((codes - zero_point) * scales), last two dims merged, float16.

    uint8 - int8 promotes to int16; int16 * float16 gives float16 computed
    in float32 and rounded once to nearest even.
    """
    codes = unsqueeze_from_6bit(qweight)
    w = (codes - zero_point) * scales
    return w.reshape(*w.shape[:-2], -1)


def recover_from_quant(named_tensors):
    """[(name, tensor)] -> [(name, tensor)] with every triple dequantized."""
    triples, out = {}, []
    for name, tensor in named_tensors:
        split = fmt.split_name(name)
        if split is None:
            out.append((name, tensor))
            continue
        base, part = split
        triples.setdefault(base, {})[part] = tensor
    for base, parts in triples.items():
        out.append(
            (base, calculate_dequant(parts[fmt.QWEIGHT], parts[fmt.ZERO_POINT], parts[fmt.SCALES]))
        )
    return out

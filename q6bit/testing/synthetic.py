"""Model shapes and synthetic q6bit tensor lists shaped like real models.

Used by `q6bit bench` and by the tests: random codes and realistic scales
(never all-zero data), built fast by tiling a random pool.
"""

from __future__ import annotations

import torch

from .. import layout as fmt
from ..checkpoint.architectures import ModelShape

_POOL_BYTES = 1 << 24


def _fill_from_pool(t: torch.Tensor, pool: torch.Tensor, offset: int) -> None:
    flat = t.view(-1)
    start = 0
    while start < flat.numel():
        o = (offset + start) % (pool.numel() // 2)
        n = min(flat.numel() - start, pool.numel() - o)
        flat[start : start + n].copy_(pool[o : o + n])
        start += n


def synthetic_list(
    shape: ModelShape, group_size: int = fmt.DEFAULT_GROUP_SIZE, seed: int = 0, progress=None
):
    """[(name, tensor)] of q6bit triples for every linear weight of `shape`
    plus plain bf16 norms, like a checkpoint read into memory."""
    gen = torch.Generator().manual_seed(seed)
    pool = torch.randint(0, 256, (_POOL_BYTES,), dtype=torch.uint8, generator=gen)
    named = []
    for k, (name, (out_f, in_f)) in enumerate(shape.linear_weights().items()):
        n_groups = in_f // group_size
        qweight = torch.empty(out_f, n_groups, fmt.packed_bytes(group_size), dtype=torch.uint8)
        _fill_from_pool(qweight, pool, offset=k * 7919)
        zero_point = torch.randint(24, 40, (out_f, n_groups, 1), dtype=torch.int8, generator=gen)
        scales = ((torch.rand(out_f, n_groups, 1, generator=gen) + 0.5) * 2e-3).to(torch.float16)
        named += [
            (f"{name}.{fmt.QWEIGHT}", qweight),
            (f"{name}.{fmt.ZERO_POINT}", zero_point),
            (f"{name}.{fmt.SCALES}", scales),
        ]
        if progress:
            progress(out_f * in_f)
    for name, dim in shape.norm_weights().items():
        named.append((name, torch.ones(dim, dtype=torch.bfloat16)))
    return named

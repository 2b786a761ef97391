"""The GPU weight path of the q6bit quantization method, free of vLLM:
packed triples travel to the device (2.6x fewer bytes than fp16) and are
dequantized there into the model dtype.

The vLLM quantization method takes the same step per layer (its packed
parameters are on the rank's device; q6bit.vllm_plugin.packed calls
q6bit.dequantize there); this module runs it on a whole checkpoint without
vLLM, which is how the GPU host (no vLLM there) tests it.
"""

from __future__ import annotations

import torch

from .. import layout as fmt
from ..ops import dequantize
from ..recover import collect_triples
from .reader import shard_files
from .staging import PinnedStager


def read_packed(checkpoint, device, pinned: bool = True) -> list[tuple[str, torch.Tensor]]:
    """Every tensor of a checkpoint folder, on `device`. pinned: read into
    (pageable) host memory, then through two reused page-locked buffers
    with asynchronous copies (q6bit/checkpoint/staging.py; the fast way);
    else safetensors reads straight to the device."""
    from safetensors import safe_open

    named = []
    stager = PinnedStager(device) if pinned else None
    for file in shard_files(checkpoint):
        if pinned:
            with safe_open(str(file), framework="pt", device="cpu") as f:
                named += [(name, stager.to_device(f.get_tensor(name))) for name in f.keys()]
        else:
            with safe_open(str(file), framework="pt", device=str(device)) as f:
                named += [(name, f.get_tensor(name)) for name in f.keys()]
    if pinned:
        stager.finish()
    return named


def dequantize_on_device(
    named, dtype: torch.dtype = torch.bfloat16, backend: str = "fast"
) -> dict[str, torch.Tensor]:
    """{X: weight as dtype} for every triple, where its tensors are (the GPU
    op on CUDA tensors); other tensors are passed through unchanged."""
    triples, passthrough = collect_triples(named)
    out = dict(passthrough)
    for name, t in triples.items():
        p = t.parts
        out[name] = dequantize(
            p[fmt.QWEIGHT], p[fmt.ZERO_POINT], p[fmt.SCALES], backend=backend, dtype=dtype
        )
    return out

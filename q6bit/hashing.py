"""Checksums of a recovered model, as the original judge computed them."""
from __future__ import annotations

import hashlib

import torch


def sampled_sha256(named_tensors) -> str:
    """The seed's sampled hash: sort by name, concatenate name +
    str(tensor.flatten()[7].item()) for every tensor, sha256 of that.
    Weak (one element a tensor), but it is what the judge printed."""
    h = hashlib.sha256()
    for name, tensor in sorted(named_tensors, key=lambda nt: nt[0]):
        h.update((name + str(tensor.flatten()[7].item())).encode())
    return h.hexdigest()


def tensor_sha256(tensor: torch.Tensor) -> str:
    """sha256 of a tensor's bytes (dtype and shape included)."""
    t = tensor.detach().contiguous().cpu()
    h = hashlib.sha256(f"{t.dtype}{tuple(t.shape)}".encode())
    h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def full_sha256(named_tensors) -> str:
    """sha256 over every tensor's name, dtype, shape and full content."""
    h = hashlib.sha256()
    for name, tensor in sorted(named_tensors, key=lambda nt: nt[0]):
        h.update(name.encode())
        h.update(tensor_sha256(tensor).encode())
    return h.hexdigest()

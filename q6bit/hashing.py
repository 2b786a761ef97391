"""Checksums of a recovered model, as the original judge computed them,
usable on a list or fed one tensor at a time while streaming."""

from __future__ import annotations

import hashlib

import torch


def sample_of(tensor: torch.Tensor) -> str:
    """The seed's sample of a tensor: str(tensor.flatten()[7].item())."""
    return str(tensor.flatten()[7].item()) if tensor.numel() > 7 else ""


def tensor_sha256(tensor: torch.Tensor) -> str:
    """sha256 of a tensor's bytes (dtype and shape included)."""
    t = tensor.detach().contiguous().cpu()
    h = hashlib.sha256(f"{t.dtype}{tuple(t.shape)}".encode())
    h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


class ModelHashes:
    """Sampled (the seed's) and, optionally, full-content hashes of named
    tensors added in any order; both sort by name at the end."""

    def __init__(self, full: bool = True):
        self.full = full
        self._samples: list[tuple[str, str]] = []
        self._digests: list[tuple[str, str]] = []

    def add(self, name: str, tensor: torch.Tensor) -> None:
        self._samples.append((name, sample_of(tensor)))
        if self.full:
            self._digests.append((name, tensor_sha256(tensor)))

    def add_sample(self, name: str, head: torch.Tensor) -> None:
        """Only the sample of tensor `name`, from a tensor holding (at least)
        its first 8 elements in order; for sampled-only hashes (full=False)."""
        assert not self.full, "a full hash needs the whole tensor: use add()"
        self._samples.append((name, sample_of(head)))

    def sampled_sha256(self) -> str:
        """Sort by name, concatenate name + sample, sha256 of that string."""
        h = hashlib.sha256()
        for name, sample in sorted(self._samples):
            h.update((name + sample).encode())
        return h.hexdigest()

    def full_sha256(self) -> str | None:
        """sha256 over every tensor's name and content hash, if enabled."""
        if not self.full:
            return None
        h = hashlib.sha256()
        for name, digest in sorted(self._digests):
            h.update(name.encode())
            h.update(digest.encode())
        return h.hexdigest()


def _hashes(named_tensors, full: bool) -> ModelHashes:
    hashes = ModelHashes(full)
    for name, tensor in named_tensors:
        hashes.add(name, tensor)
    return hashes


def sampled_sha256(named_tensors) -> str:
    """The seed's sampled hash of a [(name, tensor)] list. Weak (one element
    a tensor), but it is what the judge printed."""
    return _hashes(named_tensors, full=False).sampled_sha256()


def full_sha256(named_tensors) -> str:
    """sha256 over every tensor's name, dtype, shape and full content."""
    return _hashes(named_tensors, full=True).full_sha256()

"""Every Q6BIT_* environment variable, read in one place (as vLLM keeps its
own in vllm/envs.py). Each is read when asked, not at import, so that a
process may set them after importing q6bit.

| variable | default | meaning |
|---|---|---|
| Q6BIT_BACKEND | fast | dequantizer of the vLLM integration: fast (kernels) or reference |
| Q6BIT_FULL_HASH | 0 | 1: the load log adds a full-content sha256 of every weight |
| Q6BIT_CACHE | ~/.cache/q6bit | where demo and test models are built and cached |
| Q6BIT_HUGE_PAGES | 1 | 0: large op outputs use torch's allocator, not huge pages (csrc/) |
| Q6BIT_STREAM | 1 | 0: no streaming (non-temporal) stores for large outputs (csrc/) |
"""

from __future__ import annotations

import os
from pathlib import Path

BACKEND = "Q6BIT_BACKEND"
FULL_HASH = "Q6BIT_FULL_HASH"
CACHE = "Q6BIT_CACHE"
HUGE_PAGES = "Q6BIT_HUGE_PAGES"
STREAM = "Q6BIT_STREAM"

_TRUE = ("1", "true", "yes", "on")


def backend() -> str:
    """Q6BIT_BACKEND, checked: "fast" or "reference"."""
    from .ops import check_backend

    value = os.environ.get(BACKEND, "fast").strip() or "fast"
    check_backend(value)
    return value


def full_hash() -> bool:
    return os.environ.get(FULL_HASH, "").strip().lower() in _TRUE


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE) or Path.home() / ".cache" / "q6bit").expanduser()

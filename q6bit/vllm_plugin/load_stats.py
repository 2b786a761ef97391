"""What this process (one vLLM rank) read and dequantized while loading a
q6bit checkpoint: the loader starts it, the loader's fallback and the
quantization methods add to it, the loader logs it once processing is done."""

from __future__ import annotations

import torch

from .. import envs
from ..checkpoint import LoadStats
from ..memory import reset_peak_rss, status_kib


class RankLoad(LoadStats):
    """LoadStats plus the whole model's size and a progress bar over the
    rank's packed weights (dequantized in process_weights_after_loading)."""

    def __init__(self, model_weights: int = 0):
        super().__init__(full_hash=envs.full_hash())
        self.model_weights = model_weights  # quantized weights of the whole checkpoint
        self.bar = None
        self.kept_packed = 0  # weights left packed (packed mode)
        # RSS when loading starts; the peak (VmHWM) is reset to it, so that the
        # peak read at the end is the load's own
        self.rss_start_kib = status_kib("VmRSS") if reset_peak_rss() else None

    def peak_rss_growth_gb(self) -> float | None:
        """How far the load raised this process's RSS at its peak, in GB."""
        peak = status_kib("VmHWM")
        if self.rss_start_kib is None or peak is None:
            return None
        return (peak - self.rss_start_kib) * 1024 / 1e9

    def add_dequantized(self, name: str, weight: torch.Tensor, seconds: float) -> None:
        # the hashes are the checkpoint's, taken while streaming (stream.py)
        self.dequant_seconds += seconds
        self.weights += weight.numel()
        if self.bar is not None:
            self.bar.update(weight.numel())

    def add_kept_packed(self, name: str, weights: int) -> None:
        self.kept_packed += weights
        if self.bar is not None:
            self.bar.update(weights)

    def start_bar(self, total: int, enabled: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(
            total=total, unit="w", unit_scale=True, desc="q6bit dequant", disable=not enabled
        )

    def close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


_current = RankLoad()


def start(model_weights: int) -> RankLoad:
    global _current
    _current = RankLoad(model_weights)
    return _current


def current() -> RankLoad:
    return _current

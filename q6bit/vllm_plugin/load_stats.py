"""What this process (one vLLM rank) read and dequantized while loading a
q6bit checkpoint: the loader starts it, the loader's fallback and the
quantization methods add to it, the loader logs it once processing is done."""
from __future__ import annotations

import torch

from .. import envs
from ..checkpoint import LoadStats


class RankLoad(LoadStats):
    """LoadStats plus the whole model's size and a progress bar over the
    rank's packed weights (dequantized in process_weights_after_loading)."""

    def __init__(self, model_weights: int = 0):
        super().__init__(full_hash=envs.full_hash())
        self.model_weights = model_weights  # quantized weights of the whole checkpoint
        self.bar = None

    def add_dequantized(self, name: str, weight: torch.Tensor, seconds: float) -> None:
        self.dequant_seconds += seconds
        self.weights += weight.numel()
        self.add(name, weight)
        if self.bar is not None:
            self.bar.update(weight.numel())

    def start_bar(self, total: int, enabled: bool) -> None:
        from tqdm import tqdm
        self.bar = tqdm(total=total, unit="w", unit_scale=True, desc="q6bit dequant",
                        disable=not enabled)

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

"""Q6BitLinearMethod: a linear layer's weight as the rank's packed q6bit
partition, dequantized on the rank's device into the layer's dtype after
loading; from then on the layer is vLLM's unquantized one (on CPU, vLLM's
oneDNN/AMX repacking), so inference runs exactly as for a plain model.

A packed (no-dequant) matmul plugs in at ``process_weights_after_loading``
(keep the triple) and ``apply`` (compute from it).
"""

from __future__ import annotations

import torch
from vllm.model_executor.layers.linear import LinearMethodBase, UnquantizedLinearMethod

from .packed import PackedWeights, dequantize_packed


class Q6BitLinearMethod(PackedWeights, LinearMethodBase):
    def __init__(self, group_size: int, prefix: str):
        super().__init__(group_size, prefix, UnquantizedLinearMethod())

    def process_weights_after_loading(self, layer: torch.nn.Module) -> None:
        dequantize_packed(layer, f"{self.prefix}.weight", self.params_dtype)
        self.dense.process_weights_after_loading(layer)

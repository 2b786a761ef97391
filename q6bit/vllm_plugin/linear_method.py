"""Q6BitLinearMethod: a linear layer's weight as the rank's packed q6bit
partition. Two modes:

* dense (default): dequantized on the rank's device into the layer's dtype
  after loading; from then on the layer is vLLM's unquantized one (on CPU,
  vLLM's oneDNN/AMX repacking), so inference runs exactly as for a plain
  model;
* packed: the triple stays as it was loaded and ``apply`` computes
  ``x @ W.T + bias`` from it (q6bit.ops.linear: W is the same bit-exact
  dequantized weight, products and sums in fp32).
"""

from __future__ import annotations

import torch
from vllm.model_executor.layers.linear import LinearMethodBase, UnquantizedLinearMethod

from .packed import PackedWeights, dequantize_packed, keep_packed, packed_linear


class Q6BitLinearMethod(PackedWeights, LinearMethodBase):
    def __init__(self, group_size: int, prefix: str, packed: bool = False):
        super().__init__(group_size, prefix, UnquantizedLinearMethod(), packed)

    def process_weights_after_loading(self, layer: torch.nn.Module) -> None:
        if self.packed:
            keep_packed(layer, f"{self.prefix}.weight")
            return
        dequantize_packed(layer, f"{self.prefix}.weight", self.params_dtype)
        self.dense.process_weights_after_loading(layer)

    def apply(
        self, layer: torch.nn.Module, x: torch.Tensor, bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        if self.packed:
            return packed_linear(layer, x, bias)
        return self.dense.apply(layer, x, bias)

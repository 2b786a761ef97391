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

from .packed import check_partition, create_packed_params, dequantize_packed


class Q6BitLinearMethod(LinearMethodBase):
    def __init__(self, group_size: int, prefix: str):
        self.group_size = group_size
        self.prefix = prefix
        self.dense = UnquantizedLinearMethod()
        self.params_dtype = None

    def create_weights(
        self,
        layer: torch.nn.Module,
        input_size_per_partition: int,
        output_partition_sizes: list[int],
        input_size: int,
        output_size: int,
        params_dtype: torch.dtype,
        **extra_weight_attrs,
    ):
        check_partition(self.prefix, input_size_per_partition, input_size, self.group_size)
        self.params_dtype = params_dtype
        create_packed_params(
            layer,
            sum(output_partition_sizes),
            input_size_per_partition,
            self.group_size,
            **extra_weight_attrs,
        )

    def process_weights_after_loading(self, layer: torch.nn.Module) -> None:
        dequantize_packed(layer, f"{self.prefix}.weight", self.params_dtype)
        self.dense.process_weights_after_loading(layer)

    def apply(
        self, layer: torch.nn.Module, x: torch.Tensor, bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.dense.apply(layer, x, bias)

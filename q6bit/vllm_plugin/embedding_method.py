"""Q6BitEmbeddingMethod: a vocab embedding or LM head as the rank's packed
rows of the vocabulary. vLLM's vocab-parallel weight loader narrows the
checkpoint's rows to the rank's shard and zeroes the padding rows of all
three tensors, and a zero scale dequantizes to +0: padding stays zero.

Tied embeddings: the LM head shares the embedding's packed parameters while
loading and, in dense mode, its dequantized weight afterwards.

Packed mode: the rows stay packed; a lookup dequantizes only the rows it
gathers, and the LM head's logits come from q6bit.ops.linear.
"""

from __future__ import annotations

import torch
from vllm.model_executor.layers.quantization.base_config import QuantizeMethodBase
from vllm.model_executor.layers.vocab_parallel_embedding import UnquantizedEmbeddingMethod

from .. import layout as fmt
from ..ops import dequantize
from .packed import (
    PackedWeights,
    dequantize_packed,
    has_packed_params,
    keep_packed,
    packed_linear,
    packed_triple,
)


class Q6BitEmbeddingMethod(PackedWeights, QuantizeMethodBase):
    def __init__(self, group_size: int, prefix: str, packed: bool = False):
        super().__init__(group_size, prefix, UnquantizedEmbeddingMethod(), packed)
        self.tied_to: torch.nn.Module | None = None
        self.processed = False  # a tied LM head may process its embedding first

    def tie_weights(self, layer: torch.nn.Module, embed_tokens: torch.nn.Module):
        if not has_packed_params(embed_tokens):  # a plain embedding: vLLM's way
            for part in fmt.PARTS:
                delattr(layer, part)
            return self.dense.tie_weights(layer, embed_tokens)
        for part in fmt.PARTS:
            setattr(layer, part, getattr(embed_tokens, part))
        self.tied_to = embed_tokens
        return layer

    def process_weights_after_loading(self, layer: torch.nn.Module) -> None:
        if self.processed:
            return
        self.processed = True
        if self.tied_to is not None:
            embed = self.tied_to
            embed.quant_method.process_weights_after_loading(embed)  # once: see processed
            if self.packed:  # the embedding's packed parameters, shared
                for part in fmt.PARTS:
                    setattr(layer, part, getattr(embed, part))
                return
            for part in fmt.PARTS:
                delattr(layer, part)
            layer.weight = embed.weight
        elif self.packed:
            keep_packed(layer, f"{self.prefix}.weight")
            return
        elif has_packed_params(layer):
            dequantize_packed(layer, f"{self.prefix}.weight", self.params_dtype)
        self.dense.process_weights_after_loading(layer)

    def embedding(self, layer: torch.nn.Module, input_: torch.Tensor) -> torch.Tensor:
        if not self.packed:
            return self.dense.embedding(layer, input_)
        rows = input_.reshape(-1)
        q, zp, s = (t.index_select(0, rows) for t in packed_triple(layer))
        # huge_pages=False: a lookup runs every step, and torch's allocator
        # reuses its memory, where the op's huge-page mapping for >= 4 MiB
        # would be a fresh mmap (and page faults) each time. Same bits.
        weights = dequantize(q, zp, s, dtype=self.params_dtype, huge_pages=False)
        return weights.reshape(*input_.shape, weights.shape[-1])

    def apply(
        self, layer: torch.nn.Module, x: torch.Tensor, bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        if self.packed:  # an LM head's logits
            return packed_linear(layer, x, bias)
        return self.dense.apply(layer, x, bias)

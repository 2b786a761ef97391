"""The `q6bit` quantization config: config.json's
``quantization_config: {"quant_method": "q6bit", "bits": 6, "group_size": G}``
selects it, and it hands every layer its method:

* linear layers (column, row, QKV, merged, replicated) -> Q6BitLinearMethod,
* vocab embeddings and LM heads -> Q6BitEmbeddingMethod,
* anything else (fused MoE experts, layer types we do not know) -> vLLM's
  default; the q6bit loader dequantizes those tensors and hands plain weights.

Module-level classes, imported only once vLLM runs the plugin: vLLM pickles
the config to send it to the workers it spawns.
"""

from __future__ import annotations

import torch
from vllm.model_executor.layers.linear import LinearBase
from vllm.model_executor.layers.quantization.base_config import QuantizationConfig
from vllm.model_executor.layers.vocab_parallel_embedding import VocabParallelEmbedding

from .. import layout as fmt
from .embedding_method import Q6BitEmbeddingMethod
from .linear_method import Q6BitLinearMethod


class Q6BitConfig(QuantizationConfig):
    """q6bit checkpoints: packed 6-bit triples, dequantized per rank after
    loading (weights then run as in an unquantized model)."""

    def __init__(self, group_size: int, bits: int = fmt.BITS):
        super().__init__()
        self.group_size = group_size
        self.bits = bits

    def __repr__(self) -> str:
        return f"Q6BitConfig(bits={self.bits}, group_size={self.group_size})"

    def get_name(self):
        return fmt.QUANT_METHOD

    def get_supported_act_dtypes(self):
        return [torch.bfloat16, torch.float16, torch.float32]

    @classmethod
    def get_min_capability(cls) -> int:
        return 0  # the dequantization runs on any device torch runs on

    @staticmethod
    def get_config_filenames():
        return []  # config.json's quantization_config is enough

    @classmethod
    def from_config(cls, config):
        group_size = config.get("group_size")
        bits = config.get("bits", fmt.BITS)
        if (
            bits != fmt.BITS
            or not isinstance(group_size, int)
            or group_size <= 0
            or group_size % fmt.CODES_PER_TRIPLET
        ):
            raise ValueError(
                f"q6bit: config.json's quantization_config {config} is not a q6bit one: it "
                f'needs "bits": {fmt.BITS} and "group_size": a positive multiple of '
                f"{fmt.CODES_PER_TRIPLET} (the G of X.qweight [..., n_groups, 3*G/4])"
            )
        return cls(group_size, bits)

    @classmethod
    def override_quantization_method(
        cls, hf_quant_cfg=None, user_quant=None, hf_config=None, **kwargs
    ):
        if (
            isinstance(hf_quant_cfg, dict)
            and hf_quant_cfg.get("quant_method") == fmt.QUANT_METHOD
            and user_quant in (None, fmt.QUANT_METHOD)
        ):
            return fmt.QUANT_METHOD
        return None

    def maybe_update_config(self, model_name=None, hf_config=None, revision=None, **kwargs):
        return None

    def get_quant_method(self, layer, prefix):
        # VocabParallelEmbedding first: ParallelLMHead is one of them
        if isinstance(layer, VocabParallelEmbedding):
            return Q6BitEmbeddingMethod(self.group_size, prefix or "embedding")
        if isinstance(layer, LinearBase):
            return Q6BitLinearMethod(self.group_size, prefix)
        return None

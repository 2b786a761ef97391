"""The `q6bit` quantization config: config.json's
``quantization_config: {"quant_method": "q6bit", "bits": 6, "group_size": G}``
selects it, and it hands every layer its method:

* linear layers (column, row, QKV, merged, replicated) -> Q6BitLinearMethod,
* vocab embeddings and LM heads -> Q6BitEmbeddingMethod,
* anything else (fused MoE experts, layer types we do not know) -> vLLM's
  default; the q6bit loader dequantizes those tensors and hands plain weights.

Two modes, one checkpoint format:

* ``q6bit`` (default): weights are dequantized once after loading, bit-exact,
  and run as an unquantized model's;
* ``q6bit-packed`` (``--quantization q6bit-packed``, or ``"packed": true`` in
  the quantization_config): the weights stay packed (0.39x the bytes of
  bf16 at G=128) and every matmul and embedding lookup computes from them
  (q6bit.ops.linear; CPU only).

Module-level classes, imported only once vLLM runs the plugin: vLLM pickles
the config to send it to the workers it spawns.
"""

from __future__ import annotations

import torch
from vllm.model_executor.layers.linear import LinearBase
from vllm.model_executor.layers.quantization.base_config import QuantizationConfig
from vllm.model_executor.layers.vocab_parallel_embedding import VocabParallelEmbedding

from .. import layout as fmt
from ..checkpoint.validate import check_quantization_config
from .embedding_method import Q6BitEmbeddingMethod
from .linear_method import Q6BitLinearMethod
from .names import PACKED_KEY, PACKED_METHOD


class Q6BitConfig(QuantizationConfig):
    """q6bit checkpoints: packed 6-bit triples, dequantized per rank after
    loading (weights then run as in an unquantized model)."""

    packed = False  # Q6BitPackedConfig: weights stay packed while serving

    def __init__(self, group_size: int, bits: int = fmt.BITS):
        super().__init__()
        self.group_size = group_size
        self.bits = bits

    def __repr__(self) -> str:
        return f"{type(self).__name__}(bits={self.bits}, group_size={self.group_size})"

    @classmethod
    def get_name(cls):
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
        # the checkpoint reader's check (a CheckpointError is a ValueError)
        group_size = check_quantization_config(config, "q6bit: config.json")
        return cls(group_size, fmt.BITS)

    @classmethod
    def override_quantization_method(
        cls, hf_quant_cfg=None, user_quant=None, hf_config=None, **kwargs
    ):
        """This mode's name for a q6bit checkpoint when the user asked for it
        (--quantization), or asked for nothing and config.json's
        quantization_config selects it ("packed": true or not)."""
        if not isinstance(hf_quant_cfg, dict) or hf_quant_cfg.get("quant_method") != (
            fmt.QUANT_METHOD
        ):
            return None
        if user_quant == cls.get_name() or (
            user_quant is None and bool(hf_quant_cfg.get(PACKED_KEY, False)) == cls.packed
        ):
            return cls.get_name()
        return None

    def maybe_update_config(self, model_name=None, hf_config=None, revision=None, **kwargs):
        return None

    def get_quant_method(self, layer, prefix):
        # VocabParallelEmbedding first: ParallelLMHead is one of them
        if isinstance(layer, VocabParallelEmbedding):
            return Q6BitEmbeddingMethod(self.group_size, prefix or "embedding", self.packed)
        if isinstance(layer, LinearBase):
            return Q6BitLinearMethod(self.group_size, prefix, self.packed)
        return None


class Q6BitPackedConfig(Q6BitConfig):
    """q6bit checkpoints served packed: linear layers and embeddings compute
    from the packed triples (q6bit.ops.linear, gathered rows for lookups)."""

    packed = True

    @classmethod
    def get_name(cls):
        return PACKED_METHOD

    def get_supported_act_dtypes(self):
        return [torch.bfloat16, torch.float16, torch.float32]

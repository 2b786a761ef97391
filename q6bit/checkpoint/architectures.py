"""What q6bit knows about model architectures: the names and shapes of the
weights (quantized linear weights, plain norms) of the decoders it checks.

Used by the checkpoint reader (shapes implied by config.json), the
synthetic lists of the bench and tests, and the random test models.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

# Architectures whose linear weights linear_weights() names and shapes.
DECODER_ARCHITECTURES = {
    "LlamaForCausalLM",
    "MistralForCausalLM",
    "Qwen2ForCausalLM",
    "Qwen3ForCausalLM",
}
_REQUIRED_SIZES = (
    "num_hidden_layers",
    "hidden_size",
    "intermediate_size",
    "vocab_size",
    "num_attention_heads",
)
# model.layers.<i>.<rest>; at most 9 digits, so int() stays cheap and bounded
_LAYER_NAME = re.compile(r"model\.layers\.(0|[1-9][0-9]{0,8})\..+")


def _positive_int(config: dict, key: str) -> int:
    value = config[key]
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"key {key} must be a positive integer, found {value!r:.100}")
    return value


def attention_weights(layer: str, hidden: int, q: int, kv: int) -> dict[str, tuple[int, int]]:
    """q/k/v/o projections of one decoder layer: name -> (out, in)."""
    return {
        f"{layer}.self_attn.q_proj.weight": (q, hidden),
        f"{layer}.self_attn.k_proj.weight": (kv, hidden),
        f"{layer}.self_attn.v_proj.weight": (kv, hidden),
        f"{layer}.self_attn.o_proj.weight": (hidden, q),
    }


def qwen3_norm_weights(layers: int, hidden: int, head_dim: int) -> dict[str, int]:
    """Norm weights of a Qwen3 (dense or MoE) decoder: name -> size.
    Llama/Mistral/Qwen2 have no q_norm/k_norm; these are Qwen3's."""
    sizes = {"model.norm.weight": hidden}
    for i in range(layers):
        p = f"model.layers.{i}"
        sizes.update({
            f"{p}.input_layernorm.weight": hidden,
            f"{p}.post_attention_layernorm.weight": hidden,
            f"{p}.self_attn.q_norm.weight": head_dim,
            f"{p}.self_attn.k_norm.weight": head_dim,
        })  # fmt: skip
    return sizes


@dataclass(frozen=True)
class ModelShape:
    layers: int
    hidden: int
    intermediate: int
    vocab: int
    heads: int
    kv_heads: int
    head_dim: int
    tied_embeddings: bool

    def scaled(self, layers: int | None) -> ModelShape:
        if layers is None:
            return self
        return ModelShape(
            layers,
            self.hidden,
            self.intermediate,
            self.vocab,
            self.heads,
            self.kv_heads,
            self.head_dim,
            self.tied_embeddings,
        )

    def _layer_weights(self, p: str) -> dict[str, tuple[int, int]]:
        h, q, kv = self.hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim
        return {
            **attention_weights(p, h, q, kv),
            f"{p}.mlp.gate_proj.weight": (self.intermediate, h),
            f"{p}.mlp.up_proj.weight": (self.intermediate, h),
            f"{p}.mlp.down_proj.weight": (h, self.intermediate),
        }

    def iter_linear_weights(self) -> Iterator[tuple[str, tuple[int, int]]]:
        """(name, (out, in)) of every quantized weight, layer by layer,
        lazily: a config.json may claim any number of layers."""
        yield "model.embed_tokens.weight", (self.vocab, self.hidden)
        for i in range(self.layers):
            yield from self._layer_weights(f"model.layers.{i}").items()
        if not self.tied_embeddings:
            yield "lm_head.weight", (self.vocab, self.hidden)

    def linear_weights(self) -> dict[str, tuple[int, int]]:
        """Every quantized weight of a Llama/Qwen3 decoder: name -> (out, in)."""
        return dict(self.iter_linear_weights())

    def linear_weight(self, name: str) -> tuple[int, int] | None:
        """(out, in) of one weight named by linear_weights(), else None; in
        constant time, whatever the number of layers."""
        if name == "model.embed_tokens.weight" or (
            name == "lm_head.weight" and not self.tied_embeddings
        ):
            return (self.vocab, self.hidden)
        m = _LAYER_NAME.fullmatch(name)
        if m is None or int(m[1]) >= self.layers:
            return None
        return self._layer_weights(f"model.layers.{m[1]}").get(name)

    @classmethod
    def from_hf_config(cls, config: dict) -> ModelShape | None:
        """Shape of a Llama/Mistral/Qwen2/Qwen3 config.json, else None (other
        architectures, or sizes missing). A size that is there but not a
        positive integer is a ValueError naming the key."""
        archs = config.get("architectures") or []
        if not isinstance(archs, list) or not all(isinstance(a, str) for a in archs):
            raise ValueError(f"key architectures must be a list of strings, found {archs!r:.100}")
        if not set(archs) & DECODER_ARCHITECTURES:
            return None
        if any(config.get(k) is None for k in _REQUIRED_SIZES):
            return None
        size = {k: _positive_int(config, k) for k in _REQUIRED_SIZES}
        heads = size["num_attention_heads"]
        head_dim = _positive_int(config, "head_dim") if config.get("head_dim") else None
        if head_dim is None and size["hidden_size"] % heads:
            raise ValueError(
                f"hidden_size {size['hidden_size']} is not a multiple of num_attention_heads "
                f"{heads} (and there is no head_dim)"
            )
        tied = config.get("tie_word_embeddings", False)
        if not isinstance(tied, bool):
            raise ValueError(f"key tie_word_embeddings must be true or false, found {tied!r:.100}")
        return cls(
            size["num_hidden_layers"],
            size["hidden_size"],
            size["intermediate_size"],
            size["vocab_size"],
            heads,
            _positive_int(config, "num_key_value_heads")
            if config.get("num_key_value_heads")
            else heads,
            head_dim or size["hidden_size"] // heads,
            tied,
        )

    def norm_weights(self) -> dict[str, int]:
        """Every plain (unquantized) norm weight of a Qwen3 decoder: name -> size."""
        return qwen3_norm_weights(self.layers, self.hidden, self.head_dim)

    def n_weights(self) -> int:
        return sum(o * i for _, (o, i) in self.iter_linear_weights())


PRESETS = {
    # Qwen3-8B: the list the original task was judged on (254 tensors, 8.19 B).
    "qwen3-8b": ModelShape(36, 4096, 12288, 151936, 32, 8, 128, False),
    "qwen3-1.7b": ModelShape(28, 2048, 6144, 151936, 16, 8, 128, True),
    "llama-3.1-8b": ModelShape(32, 4096, 14336, 128256, 32, 8, 128, False),
    "tiny": ModelShape(2, 256, 512, 1000, 4, 2, 64, False),
}

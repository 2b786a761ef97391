"""What q6bit knows about model architectures: the names and shapes of the
weights (quantized linear weights, plain norms) of the decoders it checks.

Used by the checkpoint reader (shapes implied by config.json), the
synthetic lists of the bench and tests, and the random test models.
"""

from __future__ import annotations

from dataclasses import dataclass

# Architectures whose linear weights linear_weights() names and shapes.
DECODER_ARCHITECTURES = {
    "LlamaForCausalLM",
    "MistralForCausalLM",
    "Qwen2ForCausalLM",
    "Qwen3ForCausalLM",
}


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

    def linear_weights(self) -> dict[str, tuple[int, int]]:
        """Every quantized weight of a Llama/Qwen3 decoder: name -> (out, in)."""
        h, q, kv = self.hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim
        shapes = {"model.embed_tokens.weight": (self.vocab, h)}
        for i in range(self.layers):
            p = f"model.layers.{i}"
            shapes.update(attention_weights(p, h, q, kv))
            shapes.update(
                {
                    f"{p}.mlp.gate_proj.weight": (self.intermediate, h),
                    f"{p}.mlp.up_proj.weight": (self.intermediate, h),
                    f"{p}.mlp.down_proj.weight": (h, self.intermediate),
                }
            )
        if not self.tied_embeddings:
            shapes["lm_head.weight"] = (self.vocab, h)
        return shapes

    @classmethod
    def from_hf_config(cls, config: dict) -> ModelShape | None:
        """Shape of a Llama/Mistral/Qwen2/Qwen3 config.json, else None."""
        if not set(config.get("architectures") or []) & DECODER_ARCHITECTURES:
            return None
        try:
            heads = config["num_attention_heads"]
            return cls(
                config["num_hidden_layers"],
                config["hidden_size"],
                config["intermediate_size"],
                config["vocab_size"],
                heads,
                config.get("num_key_value_heads") or heads,
                config.get("head_dim") or config["hidden_size"] // heads,
                bool(config.get("tie_word_embeddings", False)),
            )
        except KeyError:
            return None

    def norm_weights(self) -> dict[str, int]:
        """Every plain (unquantized) norm weight of a Qwen3 decoder: name -> size."""
        return qwen3_norm_weights(self.layers, self.hidden, self.head_dim)

    def n_weights(self) -> int:
        return sum(o * i for o, i in self.linear_weights().values())


PRESETS = {
    # Qwen3-8B: the list the original task was judged on (254 tensors, 8.19 B).
    "qwen3-8b": ModelShape(36, 4096, 12288, 151936, 32, 8, 128, False),
    "qwen3-1.7b": ModelShape(28, 2048, 6144, 151936, 16, 8, 128, True),
    "llama-3.1-8b": ModelShape(32, 4096, 14336, 128256, 32, 8, 128, False),
    "tiny": ModelShape(2, 256, 512, 1000, 4, 2, 64, False),
}

"""Random, fixed-seed Qwen3ForCausalLM checkpoints shaped like a preset
(bf16 safetensors with the real Qwen tokenizer, and their q6bit checkpoint),
cached like the demos: models too large for the caches, for start-up and
speed measurements.
"""

from __future__ import annotations

from pathlib import Path

from .. import layout as fmt
from ..checkpoint.architectures import (
    PRESETS,
    ModelShape,
    attention_weights,
    qwen3_norm_weights,
)

SEED = 0
WEIGHT_STD = 0.02


def write_random_weights(out: Path, matrices: dict, norms: dict) -> None:
    """bf16 safetensors shards in `out`: each matrix (name -> (rows, cols))
    drawn from N(0, WEIGHT_STD) with a fixed seed, each norm (name -> size)
    all ones; one tensor at a time."""
    import torch

    from ..checkpoint import ShardWriter

    out.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(SEED)
    writer = ShardWriter(out, int(2e9))
    for name, (rows, cols) in matrices.items():
        w = torch.empty(rows, cols, dtype=torch.float32).normal_(0, WEIGHT_STD, generator=gen)
        writer.add(name, w.to(torch.bfloat16))
    for name, dim in norms.items():
        writer.add(name, torch.ones(dim, dtype=torch.bfloat16))
    writer.finish()


def build_random_qwen3_bf16(out: Path, shape: ModelShape) -> dict:
    """Writes config, tokenizer and random bf16 weights, one tensor at a time."""
    from transformers import Qwen3Config

    from .qwen_tokenizer import build_qwen_tokenizer, qwen_tiktoken

    write_random_weights(out, shape.linear_weights(), shape.norm_weights())
    config = Qwen3Config(
        vocab_size=shape.vocab,
        hidden_size=shape.hidden,
        intermediate_size=shape.intermediate,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        num_key_value_heads=shape.kv_heads,
        head_dim=shape.head_dim,
        max_position_embeddings=4096,
        tie_word_embeddings=shape.tied_embeddings,
        bos_token_id=151643,
        eos_token_id=151645,
        dtype="bfloat16",
    )
    config.architectures = ["Qwen3ForCausalLM"]
    config.save_pretrained(str(out))
    build_qwen_tokenizer(qwen_tiktoken(), out)
    return {"seed": SEED, "weights": shape.n_weights()}


def random_qwen3(preset: str, variant: str) -> Path:
    """Path of the cached random checkpoint of `preset` ("bf16" or "q6bit")."""
    from .demo_models import quantized
    from .model_cache import build_key, cached_build, module_sources

    shape = PRESETS[preset]
    key = build_key(
        build_random_qwen3_bf16,
        write_random_weights,
        shape,
        SEED,
        WEIGHT_STD,
        *module_sources("checkpoint/writer"),
    )
    bf16 = cached_build(
        f"random-{preset}-bf16", key, lambda out: build_random_qwen3_bf16(out, shape)
    )
    if variant == "bf16":
        return bf16
    return quantized(f"random-{preset}-q6bit", bf16, key, fmt.DEFAULT_GROUP_SIZE, False)


# A tiny Qwen3-MoE: its experts are vLLM FusedMoE layers, which have no q6bit
# method, so the loader's fallback (dequantize, hand over plain) serves them.
MOE_SHAPE = {
    "hidden": 128,
    "layers": 2,
    "experts": 4,
    "top_k": 2,
    "moe_intermediate": 128,
    "heads": 2,
    "kv_heads": 1,
    "head_dim": 64,
    "vocab": 151936,
}
MOE_GROUP_SIZE = 64


def build_random_qwen3_moe_bf16(out: Path) -> dict:
    """Config, tokenizer and random bf16 weights of a tiny Qwen3MoeForCausalLM,
    experts stored one tensor each (the Hugging Face per-expert names)."""
    from transformers import Qwen3MoeConfig

    from .qwen_tokenizer import build_qwen_tokenizer, qwen_tiktoken

    s = MOE_SHAPE
    h, q, kv = s["hidden"], s["heads"] * s["head_dim"], s["kv_heads"] * s["head_dim"]
    shapes = {"model.embed_tokens.weight": (s["vocab"], h), "lm_head.weight": (s["vocab"], h)}
    for i in range(s["layers"]):
        p = f"model.layers.{i}"
        shapes.update(attention_weights(p, h, q, kv))
        shapes[f"{p}.mlp.gate.weight"] = (s["experts"], h)
        for e in range(s["experts"]):
            x = f"{p}.mlp.experts.{e}"
            shapes.update(
                {
                    f"{x}.gate_proj.weight": (s["moe_intermediate"], h),
                    f"{x}.up_proj.weight": (s["moe_intermediate"], h),
                    f"{x}.down_proj.weight": (h, s["moe_intermediate"]),
                }
            )
    write_random_weights(out, shapes, qwen3_norm_weights(s["layers"], h, s["head_dim"]))
    config = Qwen3MoeConfig(
        vocab_size=s["vocab"],
        hidden_size=h,
        intermediate_size=s["moe_intermediate"],
        moe_intermediate_size=s["moe_intermediate"],
        num_experts=s["experts"],
        num_experts_per_tok=s["top_k"],
        decoder_sparse_step=1,
        mlp_only_layers=[],
        num_hidden_layers=s["layers"],
        num_attention_heads=s["heads"],
        num_key_value_heads=s["kv_heads"],
        head_dim=s["head_dim"],
        norm_topk_prob=True,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        bos_token_id=151643,
        eos_token_id=151645,
        dtype="bfloat16",
    )
    config.architectures = ["Qwen3MoeForCausalLM"]
    config.save_pretrained(str(out))
    build_qwen_tokenizer(qwen_tiktoken(), out)
    return {"seed": SEED, "weights": sum(r * c for r, c in shapes.values())}


def random_qwen3_moe(variant: str) -> Path:
    """The tiny random Qwen3-MoE: "bf16", "q6bit" (G=64) or "dequantized"."""
    from .demo_models import dequantized, quantized
    from .model_cache import build_key, cached_build, module_sources

    key = build_key(
        build_random_qwen3_moe_bf16,
        write_random_weights,
        MOE_SHAPE,
        SEED,
        WEIGHT_STD,
        *module_sources("checkpoint/writer"),
    )
    bf16 = cached_build("random-qwen3-moe-tiny-bf16", key, build_random_qwen3_moe_bf16)
    if variant == "bf16":
        return bf16
    q6 = quantized("random-qwen3-moe-tiny-q6bit", bf16, key, MOE_GROUP_SIZE, False)
    return dequantized(q6) if variant == "dequantized" else q6

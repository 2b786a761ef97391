"""Random, fixed-seed Qwen3ForCausalLM checkpoints shaped like a preset
(bf16 safetensors with the real Qwen tokenizer, and their q6bit checkpoint),
cached like the demos: models too large for the caches, for start-up and
speed measurements.
"""
from __future__ import annotations

from pathlib import Path

from .. import layout as fmt
from ..checkpoint.architectures import PRESETS, ModelShape

SEED = 0
WEIGHT_STD = 0.02


def build_random_qwen3_bf16(out: Path, shape: ModelShape) -> dict:
    """Writes config, tokenizer and random bf16 weights, one tensor at a time."""
    import torch
    from transformers import Qwen3Config

    from ..checkpoint import ShardWriter
    from .qwen_tokenizer import build_qwen_tokenizer, qwen_tiktoken

    out.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(SEED)
    writer = ShardWriter(out, int(2e9))
    for name, (rows, cols) in shape.linear_weights().items():
        w = torch.empty(rows, cols, dtype=torch.float32).normal_(0, WEIGHT_STD, generator=gen)
        writer.add(name, w.to(torch.bfloat16))
    for name, dim in shape.norm_weights().items():
        writer.add(name, torch.ones(dim, dtype=torch.bfloat16))
    writer.finish()
    config = Qwen3Config(
        vocab_size=shape.vocab, hidden_size=shape.hidden, intermediate_size=shape.intermediate,
        num_hidden_layers=shape.layers, num_attention_heads=shape.heads,
        num_key_value_heads=shape.kv_heads, head_dim=shape.head_dim,
        max_position_embeddings=4096, tie_word_embeddings=shape.tied_embeddings,
        bos_token_id=151643, eos_token_id=151645, dtype="bfloat16")
    config.architectures = ["Qwen3ForCausalLM"]
    config.save_pretrained(str(out))
    build_qwen_tokenizer(qwen_tiktoken(), out)
    return {"seed": SEED, "weights": shape.n_weights()}


def random_qwen3(preset: str, variant: str) -> Path:
    """Path of the cached random checkpoint of `preset` ("bf16" or "q6bit")."""
    from .demo_models import quantized
    from .model_cache import build_key, cached_build, module_sources

    shape = PRESETS[preset]
    key = build_key(build_random_qwen3_bf16, shape, SEED, WEIGHT_STD, *module_sources("checkpoint/writer"))
    bf16 = cached_build(f"random-{preset}-bf16", key,
                        lambda out: build_random_qwen3_bf16(out, shape))
    if variant == "bf16":
        return bf16
    return quantized(f"random-{preset}-q6bit", bf16, key, fmt.DEFAULT_GROUP_SIZE, False)

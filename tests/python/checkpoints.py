"""Small real Hugging Face model folders (config.json + safetensors) for the
checkpoint and quantizer tests."""

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from q6bit.checkpoint import ModelShape

TINY_QWEN3 = ModelShape(
    layers=2,
    hidden=128,
    intermediate=256,
    vocab=512,
    heads=2,
    kv_heads=1,
    head_dim=64,
    tied_embeddings=False,
)


def write_hf_model(
    folder: Path, shape: ModelShape = TINY_QWEN3, dtype=torch.bfloat16, seed: int = 0
) -> Path:
    """A Qwen3ForCausalLM-shaped folder with random weights, in one shard."""
    folder.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    tensors = {
        name: (torch.randn(o, i, generator=gen) * 0.05).to(dtype)
        for name, (o, i) in shape.linear_weights().items()
    }
    tensors["model.norm.weight"] = torch.ones(shape.hidden, dtype=dtype)
    for layer in range(shape.layers):
        p = f"model.layers.{layer}"
        tensors[f"{p}.input_layernorm.weight"] = torch.ones(shape.hidden, dtype=dtype)
        tensors[f"{p}.post_attention_layernorm.weight"] = torch.ones(shape.hidden, dtype=dtype)
        tensors[f"{p}.self_attn.q_norm.weight"] = torch.ones(shape.head_dim, dtype=dtype)
        tensors[f"{p}.self_attn.k_norm.weight"] = torch.ones(shape.head_dim, dtype=dtype)
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    config = {
        "architectures": ["Qwen3ForCausalLM"],
        "model_type": "qwen3",
        "hidden_size": shape.hidden,
        "intermediate_size": shape.intermediate,
        "num_hidden_layers": shape.layers,
        "vocab_size": shape.vocab,
        "num_attention_heads": shape.heads,
        "num_key_value_heads": shape.kv_heads,
        "head_dim": shape.head_dim,
        "tie_word_embeddings": shape.tied_embeddings,
        "torch_dtype": str(dtype).replace("torch.", ""),
    }
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "tokenizer.json").write_text("{}")
    return folder

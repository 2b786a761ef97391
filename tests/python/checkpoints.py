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


# A Qwen3 small enough that a quantized copy is a few KB (group size 8).
MINI_QWEN3 = ModelShape(
    layers=1, hidden=16, intermediate=32, vocab=32, heads=2, kv_heads=1, head_dim=8,
    tied_embeddings=False,
)  # fmt: skip


def write_q6bit_model(
    folder: Path, shape: ModelShape = MINI_QWEN3, group_size: int = 8, shard_bytes: int = 0
) -> Path:
    """A valid q6bit checkpoint made by q6bit's own quantizer, with an index
    (shards of about shard_bytes if given, else one)."""
    from q6bit.checkpoint import quantize_checkpoint

    src = write_hf_model(folder.parent / f"{folder.name}-hf", shape)
    gb = shard_bytes / 1e9 if shard_bytes else 2.0
    return quantize_checkpoint(src, folder, group_size=group_size, progress=False, max_shard_gb=gb)


def read_raw(file: Path) -> tuple[dict, bytes]:
    """A safetensors file as (header dict, data section bytes)."""
    raw = file.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def write_raw(file: Path, header, data: bytes = b"") -> Path:
    """A safetensors file from a header (dict, or raw bytes as they are) and data."""
    blob = header if isinstance(header, bytes) else json.dumps(header).encode()
    file.write_bytes(len(blob).to_bytes(8, "little") + blob + data)
    return file

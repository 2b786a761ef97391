"""`q6bit startup`: vLLM server start-up of a q6bit checkpoint vs the same
model in bf16, in one run on one host.

Builds once (cached like the demos, under ${Q6BIT_CACHE:-~/.cache/q6bit}) a
random, fixed-seed Qwen3ForCausalLM shaped like --preset (default
qwen3-1.7b: 28 layers, hidden 2048, tied embeddings) with the real Qwen
tokenizer, saved as bf16 safetensors, and its q6bit checkpoint. Both are read
once so that every start finds them in the page cache (or, with --cold, the
page cache is dropped before every start); then the servers are started
alternately, --runs times each, and timed from the launch to the first
answered completion request.
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from . import format as fmt
from .synthetic import PRESETS, ModelShape

SEED = 0
WEIGHT_STD = 0.02


def build_random_qwen3_bf16(out: Path, shape: ModelShape) -> dict:
    """Writes config, tokenizer and random bf16 weights, one tensor at a time."""
    import torch
    from transformers import Qwen3Config

    from .quantizer import ShardWriter
    from .qwen_tokenizer import build_qwen_tokenizer, qwen_tiktoken

    out.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(SEED)
    writer = ShardWriter(out, int(2e9))
    for name, (rows, cols) in shape.linear_weights().items():
        w = torch.empty(rows, cols, dtype=torch.float32).normal_(0, WEIGHT_STD, generator=gen)
        writer.add(name, w.to(torch.bfloat16))
    ones = {"model.norm.weight": shape.hidden}
    for i in range(shape.layers):
        p = f"model.layers.{i}"
        ones.update({f"{p}.input_layernorm.weight": shape.hidden,
                     f"{p}.post_attention_layernorm.weight": shape.hidden,
                     f"{p}.self_attn.q_norm.weight": shape.head_dim,
                     f"{p}.self_attn.k_norm.weight": shape.head_dim})
    for name, dim in ones.items():
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
    from .demo import quantized
    from .model_cache import build_key, cached_build, module_sources

    shape = PRESETS[preset]
    key = build_key(build_random_qwen3_bf16, shape, SEED, WEIGHT_STD, *module_sources("quantizer"))
    bf16 = cached_build(f"random-{preset}-bf16", key,
                        lambda out: build_random_qwen3_bf16(out, shape))
    if variant == "bf16":
        return bf16
    return quantized(f"random-{preset}-q6bit", bf16, key, fmt.DEFAULT_GROUP_SIZE, False)


def drop_page_cache() -> None:
    """Linux: write back dirty pages, then drop the clean page cache."""
    import os
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError as e:
        raise ValueError(f"--cold needs root to drop the page cache: {e}") from e


def _read_into_page_cache(folder: Path) -> None:
    for f in sorted(folder.iterdir()):
        if f.is_file():
            with open(f, "rb") as fh:
                while fh.read(1 << 24):
                    pass


def add_arguments(p):
    p.add_argument("--preset", default="qwen3-1.7b", choices=sorted(PRESETS),
                   help="model shape (default: qwen3-1.7b)")
    p.add_argument("--runs", type=int, default=3, help="server starts per model (default 3)")
    p.add_argument("--port", type=int, default=18000)
    p.add_argument("--out", help="folder for server logs and startup.json (default: a temp dir)")
    p.add_argument("--cold", action="store_true",
                   help="drop the page cache before every start (root only), so that each "
                   "server reads its weights from disk, as a first start does")


def run(args) -> int:
    from .evaluate import startup_compare

    models = {"q6bit": str(random_qwen3(args.preset, "q6bit")),
              "bf16": str(random_qwen3(args.preset, "bf16"))}
    if args.cold:
        drop_page_cache()  # fails early without root
    else:
        for path in models.values():
            _read_into_page_cache(Path(path))
    out = Path(args.out or tempfile.mkdtemp(prefix="q6bit-startup-"))
    out.mkdir(parents=True, exist_ok=True)
    results = startup_compare(models, out, args.port, args.runs,
                              before_start=drop_page_cache if args.cold else None)
    sizes = {k: sum(f.stat().st_size for f in Path(m).glob("*.safetensors"))
             for k, m in models.items()}
    q, b = results["q6bit"]["first_answer_mean_s"], results["bf16"]["first_answer_mean_s"]
    cache = "cold page cache" if args.cold else "files in the page cache"
    print(f"\n{args.preset}: start -> first answered request, mean of {args.runs} ({cache})")
    for label, r in results.items():
        print(f"  {label:6} {r['first_answer_mean_s']:7.2f} s  runs {r['first_answer_s']}  "
              f"(weights {sizes[label] / 1e9:.2f} GB; vLLM 'Loading weights took' "
              f"{r['loading_weights_s']})")
    print(f"  q6bit / bf16 = {q / b:.3f}")
    (out / "startup.json").write_text(json.dumps({"preset": args.preset, "cold": args.cold,
                                                  "results": results,
                                                  "sizes": sizes, "ratio": q / b}, indent=2))
    print(f"logs and startup.json in {out}", file=sys.stderr)
    return 0

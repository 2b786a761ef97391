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

from ..checkpoint.architectures import PRESETS
from ..testing.random_models import random_qwen3


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
    p.add_argument(
        "--preset",
        default="qwen3-1.7b",
        choices=sorted(PRESETS),
        help="model shape (default: qwen3-1.7b)",
    )
    p.add_argument("--runs", type=int, default=3, help="server starts per model (default 3)")
    p.add_argument("--port", type=int, default=18000)
    p.add_argument("--out", help="folder for server logs and startup.json (default: a temp dir)")
    p.add_argument(
        "--tensor-parallel-size",
        "-tp",
        type=int,
        default=1,
        help="vLLM tensor-parallel size of both servers (default 1)",
    )
    p.add_argument(
        "--cold",
        action="store_true",
        help="drop the page cache before every start (root only), so that each "
        "server reads its weights from disk, as a first start does",
    )


def run(args) -> int:
    from .evaluate import startup_compare

    models = {
        "q6bit": str(random_qwen3(args.preset, "q6bit")),
        "bf16": str(random_qwen3(args.preset, "bf16")),
    }
    if args.cold:
        drop_page_cache()  # fails early without root
    else:
        for path in models.values():
            _read_into_page_cache(Path(path))
    out = Path(args.out or tempfile.mkdtemp(prefix="q6bit-startup-"))
    out.mkdir(parents=True, exist_ok=True)
    tp = (
        ["--tensor-parallel-size", str(args.tensor_parallel_size)]
        if args.tensor_parallel_size != 1
        else []
    )
    results = startup_compare(
        models,
        out,
        args.port,
        args.runs,
        before_start=drop_page_cache if args.cold else None,
        extra_args=tp,
    )
    sizes = {
        k: sum(f.stat().st_size for f in Path(m).glob("*.safetensors")) for k, m in models.items()
    }
    q, b = results["q6bit"]["first_answer_mean_s"], results["bf16"]["first_answer_mean_s"]
    cache = "cold page cache" if args.cold else "files in the page cache"
    print(
        f"\n{args.preset}, TP={args.tensor_parallel_size}: start -> first answered request, "
        f"mean of {args.runs} ({cache})"
    )
    for label, r in results.items():
        extra = (
            f"; then q6bit dequant {r['q6bit_dequant_s']} s, peak RSS growth "
            f"{r['peak_rss_growth_gb']} GB per rank"
            if label == "q6bit"
            else ""
        )
        print(
            f"  {label:6} {r['first_answer_mean_s']:7.2f} s  runs {r['first_answer_s']}  "
            f"(weights {sizes[label] / 1e9:.2f} GB; vLLM 'Loading weights took' "
            f"{r['loading_weights_s']} s{extra})"
        )
    print(f"  q6bit / bf16 = {q / b:.3f}")
    (out / "startup.json").write_text(
        json.dumps(
            {
                "preset": args.preset,
                "cold": args.cold,
                "tp": args.tensor_parallel_size,
                "results": results,
                "sizes": sizes,
                "ratio": q / b,
            },
            indent=2,
        )
    )
    print(f"logs and startup.json in {out}", file=sys.stderr)
    return 0

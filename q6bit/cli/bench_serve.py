"""`q6bit bench-serve`: serving speed and memory of one model through vLLM,
in one run on one host: bf16 (the plain checkpoint), q6bit dense (weights
dequantized after loading) and q6bit packed (--quantization q6bit-packed),
side by side.

Builds once (cached) the random, fixed-seed Qwen3 of --preset (default
qwen3-1.7b: too large for the caches, so decode reads its weights from
memory every token) and its q6bit checkpoint, like `q6bit startup`. Each
mode runs in its own process (python -m q6bit.cli.speed): prefill of a
--prefill-tokens prompt (median), decode tokens/s at batch 1 and 8 (the
decode steps alone), the engine process's RSS, and the parameter and
buffer bytes the q6bit loader logs (RSS GB: the worker's RSS, which holds
the KV cache and vLLM too).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from ..checkpoint.architectures import PRESETS
from ..testing.random_models import random_qwen3

HELD_RE = re.compile(r"q6bit: rank 0/\d+ holds ([0-9.]+) GB of parameters and buffers")
MODES = ("bf16", "dense", "packed")


def add_arguments(p):
    p.add_argument("--preset", default="qwen3-1.7b", choices=sorted(PRESETS))
    p.add_argument("--modes", default=",".join(MODES), help=f"subset of {','.join(MODES)}")
    p.add_argument("--prefill-tokens", type=int, default=512)
    p.add_argument("--decode-tokens", type=int, default=32)
    p.add_argument("--runs", type=int, default=3, help="timed runs per measure (median)")
    p.add_argument("--out", help="folder for logs and bench_serve.json (default: a temp dir)")


def measure(model: Path, packed: bool, args, out: Path, label: str) -> dict:
    result = out / f"{label}.json"
    cmd = [sys.executable, "-m", "q6bit.cli.speed", str(model), "--out", str(result),
           "--prefill-tokens", str(args.prefill_tokens),
           "--decode-tokens", str(args.decode_tokens), "--runs", str(args.runs)]  # fmt: skip
    if packed:
        cmd.append("--packed")
    print(f"q6bit bench-serve: {label} ...", file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    log = proc.stdout + proc.stderr
    (out / f"{label}.log").write_text(log)
    if proc.returncode != 0:
        raise RuntimeError(f"{label}: python -m q6bit.cli.speed failed:\n{log[-4000:]}")
    r = json.loads(result.read_text())
    held = HELD_RE.search(log)
    r["held_gb"] = float(held.group(1)) if held else None
    return r


def run(args) -> int:
    modes = [m for m in args.modes.split(",") if m]
    unknown = set(modes) - set(MODES)
    if unknown:
        raise ValueError(f"--modes: unknown {sorted(unknown)}; choose from {MODES}")
    models = {"bf16": random_qwen3(args.preset, "bf16")}
    if set(modes) - {"bf16"}:
        models["q6bit"] = random_qwen3(args.preset, "q6bit")
    out = Path(args.out or tempfile.mkdtemp(prefix="q6bit-bench-serve-"))
    out.mkdir(parents=True, exist_ok=True)
    results = {
        m: measure(models["bf16" if m == "bf16" else "q6bit"], m == "packed", args, out, m)
        for m in modes
    }
    base = results.get("bf16")
    print(
        f"\n{args.preset}: vLLM offline, TP=1, bf16 activations, prefill {args.prefill_tokens} "
        f"tokens, decode {args.decode_tokens} tokens (median of {args.runs})"
    )
    print(f"{'mode':8} {'prefill s':>10} {'x bf16':>7} {'dec b1 t/s':>11} {'x bf16':>7} "
          f"{'dec b8 t/s':>11} {'x bf16':>7} {'held GB':>8} {'RSS GB':>7}")  # fmt: skip
    for m, r in results.items():
        d1, d8 = (r["decode_tokens_per_s"][k] for k in ("1", "8"))
        prefill = r["prefill_seconds"]
        speedups = ["-"] * 3
        if base:  # speed relative to bf16: > 1 is faster
            b1, b8 = (base["decode_tokens_per_s"][k] for k in ("1", "8"))
            pairs = ((base["prefill_seconds"], prefill), (d1, b1), (d8, b8))
            speedups = [f"{a / b:.2f}" if a and b else "-" for a, b in pairs]
        held = "-" if r["held_gb"] is None else f"{r['held_gb']:.3f}"
        rss = "-" if r["worker_rss_gb"] is None else f"{r['worker_rss_gb']:.2f}"
        print(
            f"{m:8} {prefill:10.3f} {speedups[0]:>7} {d1 or 0:11.2f} {speedups[1]:>7} "
            f"{d8 or 0:11.2f} {speedups[2]:>7} {held:>8} {rss:>7}"
        )
    (out / "bench_serve.json").write_text(json.dumps(results, indent=2))
    print(f"logs and bench_serve.json in {out}", file=sys.stderr)
    return 0

"""Peer benchmark: llama.cpp (through llama-cpp-python) with Q6_K vs bf16 GGUF.

Converts a Hugging Face model folder to a bf16 GGUF with llama.cpp's
convert_hf_to_gguf.py, quantizes it to Q6_K with llama_model_quantize, and
measures prefill (one prompt of --prompt-tokens, median of --repeats) and
batch-1 greedy decode (--gen-tokens) for both files. Run it through
ci/peer_llamacpp.sh, which builds llama-cpp-python into its own venv.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path


def model_path(name: str) -> Path:
    """A folder, or one of the q6bit test models by short name (never rebuilt here)."""
    if name == "qwen3-1.7b":
        return Path.home() / ".cache/q6bit/models/random-qwen3-1.7b-bf16"
    if name == "smollm2":
        return Path.home() / ".cache/q6bit/models/smollm2-135m-instruct-bf16"
    return Path(name)


def convert(src: Path, out: Path, llama_src: Path) -> None:
    if out.exists():
        print(f"# reusing {out}", flush=True)
        return
    tmp = out.with_suffix(".part")
    cmd = [sys.executable, str(llama_src / "convert_hf_to_gguf.py"), str(src)]
    cmd += ["--outtype", "bf16", "--outfile", str(tmp)]
    env = dict(os.environ, PYTHONPATH=str(llama_src / "gguf-py"))
    print("# " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, env=env)
    tmp.rename(out)


def quantize(inp: Path, out: Path, threads: int) -> None:
    import llama_cpp

    if out.exists():
        print(f"# reusing {out}", flush=True)
        return
    tmp = out.with_suffix(".part")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q6_K
    params.nthread = threads
    print(f"# llama_model_quantize({inp.name} -> {out.name}, Q6_K)", flush=True)
    rc = llama_cpp.llama_model_quantize(str(inp).encode(), str(tmp).encode(), ctypes.byref(params))
    if rc != 0:
        raise SystemExit(f"llama_model_quantize failed: {rc}")
    tmp.rename(out)


def tensor_types(path: Path) -> dict[str, int]:
    from gguf import GGUFReader

    counts: dict[str, int] = {}
    for t in GGUFReader(str(path)).tensors:
        counts[t.tensor_type.name] = counts.get(t.tensor_type.name, 0) + 1
    return counts


def measure(path: Path, args: argparse.Namespace) -> dict:
    import llama_cpp
    import numpy as np

    t0 = time.perf_counter()
    llm = llama_cpp.Llama(
        model_path=str(path),
        n_threads=args.threads,
        n_threads_batch=args.threads,
        n_ctx=args.n_ctx,
        n_batch=args.prompt_tokens,
        n_ubatch=args.prompt_tokens,
        verbose=False,
    )
    load_s = time.perf_counter() - t0
    n_vocab = llm.n_vocab()
    # A fixed prompt of exactly --prompt-tokens ids: some text, repeated.
    text = "The quick brown fox jumps over the lazy dog while the cat watches. "
    ids = llm.tokenize(text.encode(), add_bos=False, special=False)
    prompt = (ids * (args.prompt_tokens // len(ids) + 1))[: args.prompt_tokens]

    def next_token() -> int:
        ptr = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
        return int(np.ctypeslib.as_array(ptr, shape=(n_vocab,)).argmax())

    llm.reset()
    llm.eval(prompt[:8])  # warm-up: page in the weights, build the graphs
    prefill = []
    for _ in range(args.repeats):
        llm.reset()  # eval() drops the KV cache from n_tokens on: a fresh context
        t = time.perf_counter()
        llm.eval(prompt)
        prefill.append(time.perf_counter() - t)
    decode, generated = [], []
    for _ in range(args.repeats):
        llm.reset()
        llm.eval(prompt[:16])
        tok, out = next_token(), []
        t = time.perf_counter()
        for _ in range(args.gen_tokens):
            out.append(tok)
            llm.eval([tok])
            tok = next_token()
        decode.append(time.perf_counter() - t)
        generated = out
    res = {
        "gguf": str(path),
        "gguf_gib": path.stat().st_size / 2**30,
        "tensor_types": tensor_types(path),
        "load_s": load_s,
        "prefill_s": prefill,
        "prefill_tok_s": args.prompt_tokens / statistics.median(prefill),
        "decode_s": decode,
        "decode_tok_s": args.gen_tokens / statistics.median(decode),
        "prefill_tok_s_best": args.prompt_tokens / min(prefill),
        "decode_tok_s_best": args.gen_tokens / min(decode),
        "greedy_ids": generated,
    }
    llm.close()
    gc.collect()
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="qwen3-1.7b", help="folder, qwen3-1.7b or smollm2")
    p.add_argument("--llama-src", type=Path, required=True, help="vendor/llama.cpp")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/q6bit-peer"))
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--n-ctx", type=int, default=1024)
    p.add_argument("--prompt-tokens", type=int, default=512)
    p.add_argument("--gen-tokens", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--types", default="q6_k,bf16")
    p.add_argument("--json", type=Path)
    p.add_argument("--prepare-only", action="store_true", help="convert, quantize, stop")
    args = p.parse_args()

    import llama_cpp

    src = model_path(args.model)
    args.workdir.mkdir(parents=True, exist_ok=True)
    stem = src.name.removesuffix("-bf16")
    bf16 = args.workdir / f"{stem}-bf16.gguf"
    q6k = args.workdir / f"{stem}-q6_k.gguf"
    convert(src, bf16, args.llama_src)
    quantize(bf16, q6k, args.threads)
    if args.prepare_only:
        return
    files = {"q6_k": q6k, "bf16": bf16}
    load_before = os.getloadavg()
    results = {t: measure(files[t], args) for t in args.types.split(",")}
    doc = {
        "model": str(src),
        "llama_cpp_python": llama_cpp.__version__,
        "system_info": llama_cpp.llama_print_system_info().decode().strip(),
        "host": platform.processor() or platform.machine(),
        "threads": args.threads,
        "n_ctx": args.n_ctx,
        "prompt_tokens": args.prompt_tokens,
        "gen_tokens": args.gen_tokens,
        "repeats": args.repeats,
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "results": results,
    }
    if len(results) == 2:
        a, b = (r["greedy_ids"] for r in results.values())
        doc["greedy_ids_equal"] = a == b
    print(f"\nmodel {src.name}, {args.threads} threads, llama-cpp-python {llama_cpp.__version__}")
    print("tok/s: median of the repeats (best in brackets)")
    print(f"{'GGUF':6} {'GiB':>6} {'load s':>7} {'prefill tok/s':>16} {'decode tok/s':>15}")
    for t, r in results.items():
        print(
            f"{t:6} {r['gguf_gib']:6.2f} {r['load_s']:7.1f} "
            f"{r['prefill_tok_s']:7.1f} ({r['prefill_tok_s_best']:6.1f}) "
            f"{r['decode_tok_s']:6.2f} ({r['decode_tok_s_best']:6.2f})"
        )
    if "greedy_ids_equal" in doc:
        print(f"greedy ids equal (q6_k vs bf16): {doc['greedy_ids_equal']}")
    print(f"load average before {load_before}, after {doc['loadavg_after']}")
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()

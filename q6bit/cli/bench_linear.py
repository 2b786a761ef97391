"""`q6bit bench-linear`: the packed matmul op (q6bit.ops.linear) against
torch.nn.functional.linear on the same weights in bf16, over a stack of
Qwen3-8B-shaped linear layers (q 4096x4096, k/v 1024x4096, o 4096x4096,
gate/up 12288x4096, down 4096x12288), far larger than the caches, or
(--model qwen3-1.7b) of the matrices vLLM runs for Qwen3-1.7B, the model
`q6bit bench-serve` serves (qkv 4096x2048, o 2048x2048, gate_up
12288x2048, down 2048x6144: vLLM merges q/k/v and gate/up).

For each batch M (rows of activations, bf16) one pass runs every layer's
linears; after one warm-up pass the mean of --runs passes (packed and
bf16 passes taken in turn, so that a busy host slows both alike) is reported
in ms (per --layers and scaled to the model's layers), the weight bytes read per
second (packed: qweight + zero points + scales; dense: 2 B per weight), and
the packed/bf16 time ratio. Weights are random packed bytes with sane zero
points and scales. Exactness is measured too: for each M, max |y - ref| /
bound over the first rows of layer 0's matrices, ref in float64 on the
exact dequantized weights (bound as in tests/python/test_linear.py).
"""

from __future__ import annotations

import json
import time

import torch
import torch.nn.functional as F

from .. import ops
from .measure import host_facts

HIDDEN, INTERMEDIATE, KV = 4096, 12288, 1024
# (name, out_features, in_features) of one decoder layer, and the model's
# decoder layers.
MODELS = {
    "qwen3-8b": (
        [
            ("q", HIDDEN, HIDDEN),
            ("k", KV, HIDDEN),
            ("v", KV, HIDDEN),
            ("o", HIDDEN, HIDDEN),
            ("gate", INTERMEDIATE, HIDDEN),
            ("up", INTERMEDIATE, HIDDEN),
            ("down", HIDDEN, INTERMEDIATE),
        ],
        36,
    ),
    # As vLLM runs it (QKVParallelLinear, MergedColumnParallelLinear).
    "qwen3-1.7b": (
        [("qkv", 4096, 2048), ("o", 2048, 2048), ("gate_up", 12288, 2048), ("down", 2048, 6144)],
        28,
    ),
}


def add_arguments(p):
    p.add_argument("--layers", type=int, default=8, help="decoder layers in the stack (default 8)")
    p.add_argument(
        "--model",
        choices=sorted(MODELS),
        default="qwen3-8b",
        help="whose layer shapes the stack has (default qwen3-8b)",
    )
    p.add_argument(
        "--batches",
        default="1,8,512",
        help="comma-separated batch sizes M (default 1,8,512)",
    )
    p.add_argument("--group-size", type=int, default=128, help="group size G (default 128)")
    p.add_argument("--runs", type=int, default=5, help="timed passes per batch (default 5)")
    p.add_argument(
        "--path",
        choices=("auto", "gemv", "tiled"),
        default="auto",
        help="force the packed op's path for every M (default: by its threshold)",
    )
    p.add_argument("--tile-bytes", type=int, help="bytes of one dequantized tile (tiled path)")
    p.add_argument("--no-dense", action="store_true", help="skip F.linear (packed only)")
    p.add_argument(
        "--without",
        action="append",
        default=[],
        choices=ops.CPU_EXTENSIONS,
        help="forbid one of the GEMV's x86 extensions beyond AVX3_DL where the CPU has it "
        "(fp16-tables: AVX512_FP16 weight tables; bf16-tables: AVX512_BF16 ones; bf16-dot: "
        "AVX512_BF16 vdpbf16ps; amx: AMX-BF16 tiles), to compare; may be repeated",
    )
    p.add_argument(
        "--portable-tables",
        action="store_true",
        help="the same as --without fp16-tables --without bf16-tables",
    )
    p.add_argument(
        "--matrix",
        help="time one N,K matrix instead of the layer stack (e.g. 151936,2048: "
        "Qwen3-1.7B's LM head); the model column is then that matrix once",
    )
    p.add_argument(
        "--target",
        help="run the kernels on this Highway target (e.g. AVX2, AVX3: what a CPU without "
        "AVX-512 VBMI runs) instead of the best one this CPU has",
    )
    p.add_argument("--json", help="also write the results to this file")


def random_triple(n: int, k: int, g: int, gen: torch.Generator):
    qweight = torch.randint(0, 256, (n, k // g, g // 4 * 3), dtype=torch.uint8, generator=gen)
    zero_point = torch.randint(24, 40, (n, k // g, 1), dtype=torch.int8, generator=gen)
    scales = (torch.rand(n, k // g, 1, generator=gen) * 2e-3 + 1e-3).half()
    return qweight, zero_point, scales


def exactness(x, triple, rows: int = 128) -> float:
    """max |y - ref| / bound on the first `rows` output features."""
    q, z, s = (t[:rows] for t in triple)
    y = ops.linear(x, q, z, s).double()
    w = ops.dequantize(q, z, s, dtype=x.dtype).view(q.shape[0], -1).double()
    xd = x.double()
    ref = xd @ w.T
    k = w.shape[1]
    u = 2.0**-24
    bound = k * u / (1 - k * u) * (xd.abs() @ w.abs().T) + torch.finfo(x.dtype).eps / 2 * ref.abs()
    return ((y - ref).abs() / bound.clamp_min(torch.finfo(torch.float64).tiny)).max().item()


def packed_pass(inputs, triples):
    for x, triple in zip(inputs, triples):
        ops.linear(x, *triple)


def dense_pass(inputs, weights):
    for x, w in zip(inputs, weights):
        F.linear(x, w)


def time_passes(passes, runs: int) -> list[float]:
    """Mean seconds of each (fn, inputs, weights) of `passes` over `runs`
    calls after one warm-up each, the passes taken in turn run by run, so
    that a shared host's slow spells fall on all of them alike."""
    for fn, inputs, weights in passes:
        fn(inputs, weights)
    totals = [0.0] * len(passes)
    for _ in range(runs):
        for i, (fn, inputs, weights) in enumerate(passes):
            t0 = time.perf_counter()
            fn(inputs, weights)
            totals[i] += time.perf_counter() - t0
    return [t / runs for t in totals]


def run(args) -> int:
    batches = [int(b) for b in args.batches.split(",")]
    g = args.group_size
    gen = torch.Generator().manual_seed(0)
    packed, dense = [], []
    packed_bytes = dense_bytes = 0
    shapes, model_layers = MODELS[args.model]
    layers = args.layers
    if args.matrix:
        n, k = (int(v) for v in args.matrix.split(","))
        shapes, layers = [("matrix", n, k)], 1
    for _ in range(layers):
        for _, n, k in shapes:
            triple = random_triple(n, k, g, gen)
            packed.append(triple)
            packed_bytes += sum(t.numel() * t.element_size() for t in triple)
            if not args.no_dense:
                dense.append(ops.dequantize(*triple, dtype=torch.bfloat16).view(n, k))
            dense_bytes += n * k * 2
    if args.target:
        ops.force_kernel_target(args.target)
    default_m, default_tile = ops.linear_config()
    for name in ops.CPU_EXTENSIONS:
        portable = args.portable_tables and name in ("fp16-tables", "bf16-tables")
        ops.allow_cpu_extension(name, name not in args.without and not portable)
    if args.tile_bytes:
        ops.set_linear_config(tile_bytes=args.tile_bytes)
    report = {
        "host": host_facts(),
        "threads": torch.get_num_threads(),
        "kernel_target": ops.kernel_target(),
        "model": None if args.matrix else args.model,
        "layers": layers,
        "matrix": args.matrix,
        "group_size": g,
        "weights": dense_bytes // 2,
        "packed_bytes": packed_bytes,
        "path": args.path,
        "linear_config": ops.linear_config(),
        "cpu_extensions": ops.cpu_extensions_in_use(),
        "results": [],
    }
    print(
        f"{report['host']['cpu_model']}, {report['threads']} threads, {report['kernel_target']}; "
        f"{args.matrix or f'{layers} {args.model} layers'} = {dense_bytes / 2e9:.2f} G weights "
        f"(packed {packed_bytes / 1e9:.2f} GB, bf16 {dense_bytes / 1e9:.2f} GB), G={g}, "
        f"path {args.path}, GEMV up to M = {ops.gemv_max_m(torch.bfloat16)}, "
        f"tiles of {ops.linear_config()[1] >> 20} MiB, "
        f"CPU extensions: {', '.join(report['cpu_extensions']) or 'none'}"
    )
    print(
        f"{'M':>5} {'packed ms':>10} {'GB/s':>7} {'bf16 ms':>9} {'GB/s':>7} "
        f"{'packed/bf16':>11} {f'{1 if args.matrix else model_layers}-layer ms':>17} "
        f"{'max err/bound':>13}"
    )
    for m in batches:
        if args.path != "auto":
            ops.set_linear_config(gemv_max_m=m if args.path == "gemv" else m - 1)
        xs = {k: torch.randn(m, k, generator=gen).to(torch.bfloat16) for _, _, k in shapes}
        inputs = [xs[k] for _, _, k in shapes] * layers
        passes = [(packed_pass, inputs, packed)] + ([(dense_pass, inputs, dense)] if dense else [])
        t_packed, t_dense = (time_passes(passes, args.runs) + [float("nan")])[:2]
        err = max(exactness(xs[k], t) for (_, _, k), t in zip(shapes, packed))
        scale = 1 if args.matrix else model_layers / layers
        row = {
            "m": m,
            "packed_ms": t_packed * 1e3,
            "packed_gb_s": packed_bytes / t_packed / 1e9,
            "bf16_ms": t_dense * 1e3,
            "bf16_gb_s": dense_bytes / t_dense / 1e9,
            "packed_over_bf16": t_packed / t_dense,
            "packed_ms_model": t_packed * 1e3 * scale,
            "bf16_ms_model": t_dense * 1e3 * scale,
            "max_error_over_bound": err,
        }
        report["results"].append(row)
        print(
            f"{m:>5} {row['packed_ms']:>10.2f} {row['packed_gb_s']:>7.1f} {row['bf16_ms']:>9.2f} "
            f"{row['bf16_gb_s']:>7.1f} {row['packed_over_bf16']:>11.3f} "
            f"{row['packed_ms_model']:>8.1f}/{row['bf16_ms_model']:<8.1f} {err:>13.3f}"
        )
    ops.set_linear_config(gemv_max_m=default_m, tile_bytes=default_tile)
    for name in ops.CPU_EXTENSIONS:
        ops.allow_cpu_extension(name, True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return 0

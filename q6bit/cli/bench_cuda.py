"""`q6bit bench --device cuda`: the GPU side, in one run on one host.

  gpu_dequant   q6bit.ops.dequantize_list (its CUDA kernel, few Triton
                launches: q6bit/triton_dequant_list.py) over every triple
                already on the GPU (fp16 out, one new tensor per weight)
  gpu_dequant_op  the same through torch.ops.q6bit.dequantize_list (the
                dispatcher's list conversion included)
  gpu_dequant_each  the same, one single-tensor launch per triple
  gpu_fill      floor: torch.empty + fill_ of the same fp16 outputs on the GPU
  path_a_*      checkpoint bytes in host memory (pinned / pageable) -> packed
                upload (pageable: through two reused pinned buffers,
                q6bit/checkpoint/staging.py) -> GPU dequant into the model dtype
  path_b_*      the same bytes -> CPU dequant (q6bit's Highway op) -> fp16
                upload -> cast to the model dtype on the GPU
Each timing: one warm-up, then the median of --runs; the GPU work is
synchronized before the clock stops; host = the median time until the call
returned (GPU work may still be queued then). Outputs are dropped between runs
(torch's caching allocator reuses the device memory, as a loader would).
"""

from __future__ import annotations

import statistics
import time

import torch

from .. import layout as fmt
from .. import ops
from ..checkpoint.architectures import PRESETS
from ..checkpoint.staging import PinnedStager
from ..testing.synthetic import synthetic_list
from .bench import output_shapes


def _time(fn, runs: int) -> dict:
    """host_s: until fn returned (the host's part; the GPU may still run)."""
    fn()
    torch.cuda.synchronize()
    times, host = [], []
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()
        host.append(time.perf_counter() - t)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
        del result
    return {
        "median_s": statistics.median(times),
        "runs_s": times,
        "host_median_s": statistics.median(host),
    }


def _triples(named):
    parts = {}
    for name, t in named:
        split = fmt.split_name(name)
        if split:
            parts.setdefault(split[0], {})[split[1]] = t
    return [(p[fmt.QWEIGHT], p[fmt.ZERO_POINT], p[fmt.SCALES]) for p in parts.values()]


def run(args) -> dict:
    from .. import triton_dequant as td

    dtype = getattr(torch, args.model_dtype)
    shape = PRESETS[args.preset].scaled(args.layers)
    named = synthetic_list(shape, args.group_size)
    host = _triples(named)
    shapes = output_shapes(named)
    gpu = [tuple(t.cuda() for t in triple) for triple in host]
    weights = shape.n_weights()
    results = {}

    results["gpu_dequant"] = _time(lambda: ops.dequantize_list(gpu), args.runs)
    lists = [list(x) for x in zip(*gpu)]
    results["gpu_dequant_op"] = _time(lambda: torch.ops.q6bit.dequantize_list(*lists), args.runs)
    results["gpu_dequant_each"] = _time(lambda: [td.dequantize(*t) for t in gpu], args.runs)
    results["gpu_fill"] = _time(
        lambda: [torch.empty(s, dtype=torch.float16, device="cuda").fill_(1.0) for s in shapes],
        args.runs,
    )
    gpu.clear()  # frees the GPU copies
    lists.clear()

    pinned = [tuple(t.pin_memory() for t in triple) for triple in host]

    def path_a(source, upload):
        return [td.dequantize(*map(upload, triple), dtype) for triple in source]

    def path_a_pageable():
        stager = PinnedStager("cuda")  # as a loader does: per load, buffers reused
        return path_a(host, stager.to_device)

    results["path_a_pinned"] = _time(
        lambda: path_a(pinned, lambda t: t.to("cuda", non_blocking=True)), args.runs
    )
    results["path_a_pageable"] = _time(path_a_pageable, args.runs)
    pinned.clear()

    cpu_op = _cpu_op()
    if cpu_op:
        # Pinned: the CPU kernel writes into page-locked fp16 buffers, the copy is async.
        staging = [torch.empty(s, dtype=torch.float16).pin_memory() for s in shapes]

        def path_b_pinned():
            for triple, buf in zip(host, staging):
                torch.ops.q6bit.dequantize.out(*triple, out=buf)
            return [b.to("cuda", non_blocking=True).to(dtype) for b in staging]

        def path_b_pageable():
            return [
                w.to("cuda").to(dtype)
                for w in torch.ops.q6bit.dequantize_list(*map(list, zip(*host)))
            ]

        results["path_b_pinned"] = _time(path_b_pinned, args.runs)
        results["path_b_pageable"] = _time(path_b_pageable, args.runs)
        del staging

    report = {
        "preset": args.preset,
        "layers": shape.layers,
        "group_size": args.group_size,
        "weights": weights,
        "model_dtype": args.model_dtype,
        "gpu": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "cpu_threads": torch.get_num_threads(),
        "cpu_op": cpu_op or "absent",
        "methods": results,
    }
    _print(report)
    return report


def _cpu_op() -> str | None:
    """The CPU kernels' target for path (b), or None where q6bit._C is absent."""
    from .. import ops

    try:
        return ops.kernel_target()
    except RuntimeError:
        return None


def _print(report):
    m, w = report["methods"], report["weights"]
    print(
        f"\n{report['preset']}: {w / 1e9:.2f} B weights, G={report['group_size']}, "
        f"{report['gpu']}, torch {report['torch']}, CPU op {report['cpu_op']} "
        f"({report['cpu_threads']} threads), model dtype {report['model_dtype']}"
    )
    fill = m["gpu_fill"]["median_s"]
    in_bytes = w * 3 // 4 + 3 * w // report["group_size"]
    for name, t in m.items():
        s = t["median_s"]
        extra = ""
        if name.startswith("gpu_dequant"):
            extra = f"  {s / fill:.2f}x fill, {(in_bytes + 2 * w) / s / 1e12:.2f} TB/s moved"
        if name.startswith("gpu_"):
            extra += f", host {t['host_median_s'] * 1e3:.2f} ms"
        if name.startswith("path_b_") and name.replace("_b_", "_a_") in m:
            extra = f"  {s / m[name.replace('_b_', '_a_')]['median_s']:.2f}x path (a)"
        print(f"{name:<16} {s * 1e3:10.2f} ms{extra}")

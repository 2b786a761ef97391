"""`q6bit bench`: recover_from_quant on a synthetic model-shaped list, timed
against the reference and against memory floors, in one run on one host.

Replaces the original speed_test.py. Each method runs in a fresh child
process (its own heap, its own peak RSS):
one warm-up = the cold run, then the mean of --runs timed runs; outputs are
dropped between runs so nothing is reused but what the allocator keeps.
  reference      q6bit.reference.recover_from_quant (the seed's PyTorch code)
  q6bit          q6bit.recover_from_quant (Highway kernels, one parallel region)
  per_tensor     the kernels called tensor by tensor (only with --per-tensor)
  compile        torch.compile of the reference (only with --compile)
  fill           floor: torch.empty + fill_ of the same fp16 outputs
  fill_thp       the same in a child with THP_MEM_ALLOC_ENABLE=1 (huge pages)
  touched        floor: fill_ of already-touched output buffers
With --device cuda, the GPU methods of q6bit/cli/bench_cuda.py instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch

from .. import layout as fmt
from ..checkpoint.architectures import PRESETS
from ..testing.synthetic import synthetic_list
from .measure import Timing, host_facts, time_calls


def add_arguments(p):
    p.add_argument(
        "--preset",
        default="qwen3-1.7b",
        choices=sorted(PRESETS),
        help="model shape to synthesize (default: qwen3-1.7b)",
    )
    p.add_argument("--layers", type=int, help="use only N decoder layers (scale down)")
    p.add_argument("--group-size", type=int, default=fmt.DEFAULT_GROUP_SIZE)
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--runs", type=int, default=3, help="timed runs after the warm-up")
    p.add_argument(
        "--skip", default="", help="comma-separated methods to skip, e.g. reference,fill_thp"
    )
    p.add_argument("--compile", action="store_true", help="also time torch.compile(reference)")
    p.add_argument(
        "--per-tensor",
        action="store_true",
        help="also time the kernels called one tensor at a time",
    )
    p.add_argument("--json", help="write the results as JSON to this file")
    p.add_argument(
        "--device",
        default="cpu",
        choices=("cpu", "cuda"),
        help="cuda: GPU dequant vs GPU fill, and the host -> GPU weight "
        "paths (q6bit/cli/bench_cuda.py)",
    )
    p.add_argument(
        "--model-dtype",
        default="bfloat16",
        choices=("float16", "bfloat16", "float32"),
        help="with --device cuda: dtype of the weights on the GPU",
    )


def output_shapes(named):
    return [fmt.dequantized_shape(t.shape) for n, t in named if n.endswith("." + fmt.QWEIGHT)]


def fill_outputs(shapes):
    return [torch.empty(s, dtype=torch.float16).fill_(1.0) for s in shapes]


def _method(name: str, named, shapes):
    """The callable timed for one method, built inside its own process."""
    import q6bit

    from .. import reference

    if name == "reference":
        return lambda: reference.recover_from_quant(named)
    if name == "q6bit":
        return lambda: q6bit.recover_from_quant(named)
    if name == "per_tensor":  # one op call (one parallel region) per tensor
        triples = q6bit.recover.collect_triples(named)[0].values()
        return lambda: [q6bit.recover.dequantize_triple(t) for t in triples]
    if name == "compile":
        compiled = torch.compile(reference.calculate_dequant, dynamic=False)
        triples = q6bit.recover.collect_triples(named)[0].values()
        parts = [
            (t.parts[fmt.QWEIGHT], t.parts[fmt.ZERO_POINT], t.parts[fmt.SCALES]) for t in triples
        ]
        return lambda: [compiled(*p) for p in parts]
    if name in ("fill", "fill_thp"):
        return lambda: fill_outputs(shapes)
    if name == "touched":
        buffers = fill_outputs(shapes)
        return lambda: [b.fill_(0.5) for b in buffers] and None
    raise ValueError(name)


def _child_main():
    """One method in a fresh process: a fresh heap, so no method reuses pages
    another touched, and peak RSS is its own."""
    d = json.loads(sys.stdin.read())
    if d["threads"]:
        torch.set_num_threads(d["threads"])
    shape = PRESETS[d["preset"]].scaled(d["layers"])
    named = synthetic_list(shape, d["group_size"])
    fn = _method(d["method"], named, output_shapes(named))
    print(json.dumps(time_calls(fn, d["runs"]).as_dict()))


def _run_child(method: str, args) -> Timing:
    env = dict(os.environ)
    if method == "fill_thp":
        env["THP_MEM_ALLOC_ENABLE"] = "1"  # read by torch's allocator at start-up
    payload = json.dumps(
        {
            "method": method,
            "preset": args.preset,
            "layers": args.layers,
            "group_size": args.group_size,
            "threads": args.threads,
            "runs": args.runs,
        }
    )
    out = subprocess.run(
        [sys.executable, "-m", "q6bit.cli.bench", "--child"],
        input=payload,
        capture_output=True,
        text=True,
        env=env,
    )
    if out.returncode != 0:
        raise RuntimeError(f"bench child for {method} failed:\n{out.stderr[-3000:]}")
    d = json.loads(out.stdout.strip().splitlines()[-1])
    return Timing(d["cold_s"], d["runs_s"], d["peak_extra_bytes"])


METHODS = ("reference", "q6bit", "per_tensor", "compile", "fill", "fill_thp", "touched")


def run(args) -> dict:
    if args.device == "cuda":
        from . import bench_cuda

        report = bench_cuda.run(args)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(report, f, indent=2)
        return report
    from tqdm import tqdm

    import q6bit

    shape = PRESETS[args.preset].scaled(args.layers)
    skip = {s for s in args.skip.split(",") if s}
    if not args.compile:
        skip.add("compile")
    if not args.per_tensor:
        skip.add("per_tensor")
    # Byte counts from the shape alone (the children build the real lists).
    weights = shape.n_weights()
    out_bytes = 2 * weights
    in_bytes = weights * 3 // 4 + 3 * weights // args.group_size
    results: dict[str, Timing] = {}
    todo = [m for m in METHODS if m not in skip]
    for method in tqdm(todo, desc="methods (one child process each)", file=sys.stderr):
        results[method] = _run_child(method, args)

    report = {
        "preset": args.preset,
        "layers": shape.layers,
        "group_size": args.group_size,
        "tensors": len(shape.linear_weights()),
        "weights": weights,
        "input_bytes": in_bytes,
        "output_bytes": out_bytes,
        "threads": args.threads or torch.get_num_threads(),
        "kernel_target": q6bit.kernel_target(),
        "torch": torch.__version__,
        **host_facts(),
        "methods": {k: v.as_dict() for k, v in results.items()},
    }
    _print_table(report, results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return report


def _print_table(report, results):
    def ratio(a, b):
        return f"{a / b:7.2f}" if b else "      -"

    ref = results.get("reference")
    floors = [results.get(k) for k in ("fill", "fill_thp", "touched")]
    print(
        f"\n{report['preset']}: {report['tensors']} tensors, "
        f"{report['weights'] / 1e9:.2f} B weights, "
        f"{report['threads']} threads, {report['cpu_model']}, target {report['kernel_target']}, "
        f"THP {report['thp_enabled']}"
    )
    print(
        f"{'method':<10} {'cold s':>8} {'mean s':>8} {'ref/x':>7} {'x/fill':>7} "
        f"{'x/thp':>7} {'x/touch':>7} {'GB/s':>7} {'peak+MiB':>9} cold-ok"
    )
    for name, t in results.items():
        peak = "-" if t.peak_extra_bytes is None else f"{t.peak_extra_bytes / 2**20:.0f}"
        print(
            f"{name:<10} {t.cold:8.3f} {t.mean:8.3f} "
            f"{ratio(ref.mean, t.mean) if ref else '      -'} "
            + " ".join(ratio(t.mean, f.mean) if f else "      -" for f in floors)
            + f" {report['output_bytes'] / t.mean / 1e9:7.2f} {peak:>9} "
            f"{'yes' if t.cold_within_bound() else 'NO'}"
        )


if __name__ == "__main__":
    if sys.argv[1:] == ["--child"]:
        _child_main()
    else:  # python -m q6bit.cli.bench ... == q6bit bench ...
        import argparse

        parser = argparse.ArgumentParser(
            prog="python -m q6bit.cli.bench",
            description=__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        add_arguments(parser)
        run(parser.parse_args())

"""`q6bit evaluate [MODEL]`: the original evaluate.py, on one host.

1. Serves MODEL (default: the SmolLM2 q6bit demo) with Q6BIT_BACKEND=
   reference, then with Q6BIT_BACKEND=fast (Q6BIT_FULL_HASH=1), runs
   `q6bit ask` against each, and checks that the two answer files are
   identical and that the sampled and full-content sha256 the loader logged
   are identical.
2. Times dequantization the way the original judge did, in this process (no
   server): q6bit.checkpoint.iter_checkpoint_weights over the whole
   checkpoint for each backend, one warm-up (the cold run), then the mean t
   of --runs timed runs; the cold run must stay within max(1.5 t, t + 1.5 s).
   Also checks that these in-process loads hash like the servers' loads.

3. With --startup-vs OTHER (e.g. the bf16 model the checkpoint came from:
   `--startup-vs "$(q6bit demo --bf16 --print-path)"`), also measures server
   start-up (launch -> /v1/models answers) and vLLM's "Loading weights took"
   for both models, alternating, --startup-runs times each (a report, no check).

Prints a report (and --json), keeps answers and server logs in --out.
Exit code 0 only if every check passes.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
import time
from pathlib import Path

from .server import DEFAULT_PORT, DEFAULT_READY_TIMEOUT, Server, ServerError, parse_load_log

BACKENDS = ("reference", "fast")


def add_arguments(p):
    p.add_argument(
        "model", nargs="?", help="q6bit checkpoint folder (default: the SmolLM2 q6bit demo)"
    )
    p.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port to serve on; a free one if taken (default {DEFAULT_PORT})",
    )
    p.add_argument(
        "--out",
        help="folder for answers, server logs and report.json (default: a new temporary folder)",
    )
    p.add_argument("--runs", type=int, default=3, help="timed runs after the warm-up (default 3)")
    p.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_READY_TIMEOUT,
        help="seconds to wait for each server to answer",
    )
    p.add_argument("--skip-serve", action="store_true", help="only the timing part")
    p.add_argument("--skip-timing", action="store_true", help="only the serving part")
    p.add_argument("--json", help="also write the report as JSON to this file")
    p.add_argument(
        "--startup-vs",
        metavar="MODEL",
        help="also compare server start-up time with this model (e.g. the bf16 "
        'source: "$(q6bit demo --bf16 --print-path)")',
    )
    p.add_argument(
        "--startup-runs",
        type=int,
        default=2,
        help="server starts per model for --startup-vs (default 2)",
    )


def serve_and_ask(
    model: str, backend: str, out: Path, port: int, timeout: float = DEFAULT_READY_TIMEOUT
) -> dict:
    """One server with the given backend: start, ask, stop. Returns its facts."""
    from .ask import ask, write_answers

    log_path = out / f"server-{backend}.log"
    server = Server(model, port, backend=backend, full_hash=True, log_path=log_path)
    print(f"[{backend}] starting vLLM on port {server.port} (log {log_path})", flush=True)
    server.start()
    try:
        server.wait_ready(timeout)
        print(f"[{backend}] ready in {server.ready_seconds:.1f} s; asking", flush=True)
        answers = write_answers(ask(server.url), out / f"ans-{backend}.txt")
    finally:
        server.stop()
    facts = parse_load_log(server.log())
    return {
        "backend": backend,
        "ready_seconds": round(server.ready_seconds, 2),
        "answers": str(answers),
        "log": str(log_path),
        **facts,
    }


def time_backend(model: str, backend: str, runs: int) -> dict:
    """The judge's timing of a whole-checkpoint load with one backend."""
    from ..checkpoint import LoadStats, iter_checkpoint_weights
    from .measure import time_calls

    stats: list[LoadStats] = []

    def load_all():
        s = LoadStats()
        stats.append(s)
        return list(iter_checkpoint_weights(model, backend=backend, stats=s, progress=False))

    timing = time_calls(load_all, runs)
    dequant = [s.dequant_seconds for s in stats]
    return {
        "backend": backend,
        **timing.as_dict(),
        "dequant_only_cold_s": dequant[0],
        "dequant_only_mean_s": sum(dequant[1:]) / max(1, len(dequant) - 1),
        "weights": stats[-1].weights,
        "tensors": stats[-1].tensors,
        "sampled_sha256": stats[-1].sampled_sha256(),
    }


LOADING_RE = re.compile(r"Loading weights took ([0-9.]+) seconds")
# the q6bit loader's per-rank line (q6bit/vllm_plugin/loader.py)
RANK_RE = re.compile(
    r"q6bit: rank \d+/\d+ dequantized [0-9.]+ M of [0-9.]+ M weights in "
    r"([0-9.]+) s .*peak RSS \+([0-9.?]+) GB"
)


def startup_compare(
    models: dict[str, str],
    out: Path,
    port: int,
    runs: int,
    timeout: float = DEFAULT_READY_TIMEOUT,
    before_start=None,
    extra_args: list[str] = (),
) -> dict:
    """Start-up of each model's server, alternating, `runs` times each: from
    the launch to the first answered completion request (`first_answer_s`),
    and to /v1/models answering (`ready_s`)."""
    from .server import post_json

    results = {
        label: {
            "model": m,
            "ready_s": [],
            "first_answer_s": [],
            "loading_weights_s": [],
            "q6bit_dequant_s": [],
            "peak_rss_growth_gb": [],
        }
        for label, m in models.items()
    }
    for i in range(runs):
        for label, model in models.items():
            log_path = out / f"startup-{label}-{i + 1}.log"
            if before_start:
                before_start()
            server = Server(model, port, log_path=log_path, extra_args=list(extra_args))
            server.start()
            try:
                served = server.wait_ready(timeout)
                post_json(
                    f"{server.url}/v1/completions",
                    {"model": served[0], "prompt": "Hello", "max_tokens": 1, "temperature": 0},
                )
                first_answer = time.perf_counter() - server.started_at
            finally:
                server.stop()
            m = LOADING_RE.search(server.log())
            r = results[label]
            r["ready_s"].append(round(server.ready_seconds, 2))
            r["first_answer_s"].append(round(first_answer, 2))
            r["loading_weights_s"].append(float(m.group(1)) if m else None)
            # per rank: the slowest rank's dequantization (after "Loading weights
            # took"), the largest RSS growth while loading
            ranks = RANK_RE.findall(server.log())
            r["q6bit_dequant_s"].append(max((float(t) for t, _ in ranks), default=None))
            r["peak_rss_growth_gb"].append(
                max((float(g) for _, g in ranks if g != "?"), default=None)
            )
            print(
                f"[startup] {label} run {i + 1}: first answer after {first_answer:.1f} s "
                f"(ready {server.ready_seconds:.1f} s)",
                flush=True,
            )
    for r in results.values():
        r["ready_mean_s"] = round(sum(r["ready_s"]) / len(r["ready_s"]), 2)
        r["first_answer_mean_s"] = round(sum(r["first_answer_s"]) / len(r["first_answer_s"]), 2)
    return results


def evaluate(
    model: str,
    out: Path,
    port: int = DEFAULT_PORT,
    runs: int = 3,
    serve: bool = True,
    timing: bool = True,
    timeout: float = DEFAULT_READY_TIMEOUT,
    startup_vs: str | None = None,
    startup_runs: int = 2,
) -> dict:
    """Runs the checks; returns the report with "checks" {name: bool}."""
    from .measure import host_facts

    out.mkdir(parents=True, exist_ok=True)
    report = {
        "model": model,
        "out": str(out),
        "host": host_facts(),
        "checks": {},
        "servers": {},
        "timing": {},
    }
    checks = report["checks"]
    if serve:
        for backend in BACKENDS:
            try:
                report["servers"][backend] = serve_and_ask(model, backend, out, port, timeout)
            except ServerError as e:
                report["servers"][backend] = {"backend": backend, "error": str(e)}
                checks[f"server {backend} answered"] = False
                print(f"[{backend}] FAILED: {e}", file=sys.stderr)
        ref, fast = (report["servers"].get(b, {}) for b in BACKENDS)
        if "answers" in ref and "answers" in fast:
            checks["server reference answered"] = checks["server fast answered"] = True
            checks["ans.txt identical"] = (
                Path(ref["answers"]).read_bytes() == Path(fast["answers"]).read_bytes()
            )
            for key in ("sampled_sha256", "full_sha256"):
                checks[f"{key} logged by both"] = bool(ref.get(key) and fast.get(key))
                checks[f"{key} identical"] = bool(ref.get(key)) and ref.get(key) == fast.get(key)
    if timing:
        for backend in BACKENDS:
            print(f"[timing] {backend}: warm-up + {runs} runs", flush=True)
            report["timing"][backend] = time_backend(model, backend, runs)
        t_ref, t_fast = report["timing"]["reference"], report["timing"]["fast"]
        checks["fast: cold <= max(1.5 t, t + 1.5 s)"] = t_fast["cold_within_bound"]
        checks["in-process sampled_sha256 identical"] = (
            t_ref["sampled_sha256"] == t_fast["sampled_sha256"]
        )
        server_hash = report["servers"].get("fast", {}).get("sampled_sha256")
        if server_hash:
            checks["server and in-process sampled_sha256 identical"] = (
                server_hash == t_fast["sampled_sha256"]
            )
        report["speedup_fast_vs_reference"] = t_ref["mean_s"] / t_fast["mean_s"]
    if startup_vs:
        report["startup"] = startup_compare(
            {"q6bit": model, "other": startup_vs}, out, port, startup_runs, timeout
        )
    # nothing to check (start-up comparison only) is a pass; no check run otherwise is not
    report["passed"] = all(checks.values()) and (bool(checks) or not (serve or timing))
    return report


def format_report(report: dict) -> str:
    lines = [
        f"q6bit evaluate: {report['model']}",
        f"  host: {report['host']['cpu_model']}, {report['host']['cpu_count']} CPUs",
        f"  files: {report['out']}",
    ]
    for backend, s in report["servers"].items():
        if "error" in s:
            lines.append(f"  server {backend:9s}: FAILED")
            continue
        lines.append(
            f"  server {backend:9s}: ready in {s['ready_seconds']:.1f} s, dequant cost "
            f"{s['dequant_seconds']} s, sampled {str(s['sampled_sha256'])[:16]}..., "
            f"full {str(s['full_sha256'])[:16]}..."
        )
    for backend, t in report["timing"].items():
        lines.append(
            f"  timing {backend:9s}: cold {t['cold_s']:.3f} s, mean {t['mean_s']:.3f} s "
            f"({' '.join(f'{r:.3f}' for r in t['runs_s'])}), dequant only "
            f"{t['dequant_only_mean_s']:.3f} s, {t['weights'] / 1e6:.1f} M weights, "
            f"cold bound {'ok' if t['cold_within_bound'] else 'EXCEEDED'}"
        )
    if "speedup_fast_vs_reference" in report:
        lines.append(f"  fast vs reference: {report['speedup_fast_vs_reference']:.1f}x")
    for label, r in report.get("startup", {}).items():
        lines.append(
            f"  start-up {label:7s}: ready {r['ready_mean_s']:.1f} s mean "
            f"({' '.join(map(str, r['ready_s']))}), vLLM 'Loading weights took' "
            f"{r['loading_weights_s']} s  [{r['model']}]"
        )
    for name, ok in report["checks"].items():
        lines.append(f"  [{'PASS' if ok else 'FAIL'}] {name}")
    lines.append(f"q6bit evaluate: {'PASSED' if report['passed'] else 'FAILED'}")
    return "\n".join(lines)


def run(args) -> int:
    from .serve import resolve_model

    model = resolve_model(args.model)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="q6bit-evaluate-"))
    t0 = time.perf_counter()
    report = evaluate(
        model,
        out,
        args.port,
        args.runs,
        not args.skip_serve,
        not args.skip_timing,
        args.timeout,
        args.startup_vs,
        args.startup_runs,
    )
    report["wall_seconds"] = round(time.perf_counter() - t0, 1)
    text = json.dumps(report, indent=2, sort_keys=True, default=str)
    (out / "report.json").write_text(text + "\n")
    if args.json:
        Path(args.json).write_text(text + "\n")
    print(format_report(report))
    return 0 if report["passed"] else 1

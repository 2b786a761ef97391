"""Starting and stopping a vLLM server on a q6bit checkpoint (no vllm import
here: the server runs in its own process group, launched through
`python -m q6bit.cli.vllm_command serve ...`). Used by `q6bit serve`, `q6bit
evaluate` and the end-to-end tests."""

from __future__ import annotations

import http.client
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from .. import envs

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 18000
DEFAULT_READY_TIMEOUT = 900.0  # a cold start on a fresh 2-core machine is slow

# vLLM settings for CPU hosts, each applied only if the user did not set it
CPU_ENV_DEFAULTS = {
    "VLLM_CPU_KVCACHE_SPACE": "2",  # GiB; unset = half of RAM
    "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",  # use every core for the model
}
CPU_ARG_DEFAULTS = [
    ("--enforce-eager", None),  # no Inductor compile (not at PP > 1: eager_works)
    ("--max-model-len", "2048"),
]  # small KV cache, short prompts
EAGER_FLAG = "--enforce-eager"


def eager_works(pp: int, cpu: bool) -> bool:
    """Whether vLLM can run this layout eagerly. vllm-cpu 0.32.0's CPU runner
    allocates the buffers that carry activations between pipeline stages
    only in its compile warm-up, which --enforce-eager skips: every later
    stage then fails its first batch ("assert self.intermediate_tensors is
    not None"), plain checkpoints too. So PP > 1 on CPUs runs compiled
    (Inductor: about a minute more to start on 2 cores)."""
    return pp <= 1 or not cpu


QUIET_ENV = {"VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}

SAMPLED_RE = re.compile(r"q6bit: sampled sha256 ([0-9a-f]{64})")
FULL_RE = re.compile(r"q6bit: full sha256 ([0-9a-f]{64})")
DEQUANT_RE = re.compile(r"q6bit: dequant cost ([0-9.]+) s")


class ServerError(RuntimeError):
    """The server exited, or did not answer in time."""


def port_is_free(port: int, host: str = DEFAULT_HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # as uvicorn binds: a port in TIME_WAIT after a server stopped is free
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def pick_port(preferred: int = DEFAULT_PORT, host: str = DEFAULT_HOST) -> int:
    """`preferred` if it is free, else a free port the kernel hands out."""
    if preferred and port_is_free(preferred, host):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def is_cpu_host() -> bool:
    """True where vLLM will run on the CPU (no CUDA/ROCm/XPU device)."""
    import torch

    if torch.cuda.is_available():
        return False
    xpu = getattr(torch, "xpu", None)
    return not (xpu is not None and xpu.is_available())


def _cpu_ranges() -> str:
    """The CPUs this process may run on, as vLLM's "0-3,6" list."""
    cpus = (
        sorted(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else list(range(os.cpu_count() or 1))
    )
    ranges, i = [], 0
    while i < len(cpus):
        j = i
        while j + 1 < len(cpus) and cpus[j + 1] == cpus[j] + 1:
            j += 1
        ranges.append(str(cpus[i]) if i == j else f"{cpus[i]}-{cpus[j]}")
        i = j + 1
    return ",".join(ranges)


def cpu_binding(ranks: int) -> str:
    """VLLM_CPU_OMP_THREADS_BIND for `ranks` worker processes (TP x PP):
    this process's CPUs split into equal consecutive groups, "0|1" for two
    ranks on two cores. With fewer CPUs than ranks, ranks share them."""
    cpus = (
        sorted(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else list(range(os.cpu_count() or 1))
    )
    if ranks <= 1:
        return _cpu_ranges()
    per = max(1, len(cpus) // ranks)
    groups = [cpus[(r * per) % len(cpus) :][:per] for r in range(ranks)]
    return "|".join(",".join(map(str, g)) for g in groups)


def parallel_sizes(args: list[str]) -> tuple[int, int]:
    """(tensor-, pipeline-parallel size) named in vLLM arguments (default 1)."""
    sizes = {"tp": 1, "pp": 1}
    flags = {
        "--tensor-parallel-size": "tp",
        "-tp": "tp",
        "--pipeline-parallel-size": "pp",
        "-pp": "pp",
    }
    for i, a in enumerate(args):
        flag, eq, value = a.partition("=")
        if flag in flags:
            value = value if eq else (args[i + 1] if i + 1 < len(args) else "1")
            sizes[flags[flag]] = int(value)
    return sizes["tp"], sizes["pp"]


def _has_flag(args: list[str], *flags: str) -> bool:
    return any(a == f or a.startswith(f + "=") for a in args for f in flags)


def server_env(
    base: dict | None = None,
    cpu: bool | None = None,
    backend: str | None = None,
    full_hash: bool | None = None,
    local_model: bool = True,
    extra_args: list[str] = (),
) -> dict:
    env = dict(os.environ if base is None else base)
    for k, v in QUIET_ENV.items():
        env.setdefault(k, v)
    if local_model:
        env.setdefault("HF_HUB_OFFLINE", "1")
    if cpu if cpu is not None else is_cpu_host():
        for k, v in CPU_ENV_DEFAULTS.items():
            env.setdefault(k, v)
        tp, pp = parallel_sizes(list(extra_args))
        env.setdefault("VLLM_CPU_OMP_THREADS_BIND", cpu_binding(tp * pp))
    if backend is not None:
        env[envs.BACKEND] = backend
    if full_hash is not None:
        env[envs.FULL_HASH] = "1" if full_hash else "0"
    return env


def server_command(
    model: str,
    port: int,
    host: str = DEFAULT_HOST,
    extra_args: list[str] = (),
    cpu: bool | None = None,
) -> list[str]:
    args = list(extra_args)
    cmd = [
        sys.executable,
        "-m",
        "q6bit.cli.vllm_command",
        "serve",
        str(model),
        "--host",
        host,
        "--port",
        str(port),
    ]
    cpu = cpu if cpu is not None else is_cpu_host()
    pp = parallel_sizes(args)[1]
    if cpu:
        for flag, value in CPU_ARG_DEFAULTS:
            if flag == EAGER_FLAG and not eager_works(pp, cpu):
                continue
            if not _has_flag(args, flag):
                cmd += [flag] if value is None else [flag, value]
    if _has_flag(args, EAGER_FLAG) and not eager_works(pp, cpu):
        raise ServerError(
            f"{EAGER_FLAG} with --pipeline-parallel-size {pp} fails on vllm-cpu 0.32.0 (its "
            "CPU runner sets up the buffers between pipeline stages only while compiling); "
            f"leave {EAGER_FLAG} out"
        )
    return cmd + args


def get_json(url: str, timeout: float = 5.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def post_json(url: str, payload: dict, timeout: float = 600.0):
    req = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        body = e.read().decode(errors="replace")
        raise ServerError(f"POST {url}: HTTP {e.code}: {body[:2000]}") from e


class Server:
    """A vLLM server process group on a q6bit (or any) model folder."""

    def __init__(
        self,
        model,
        port: int = DEFAULT_PORT,
        host: str = DEFAULT_HOST,
        backend: str | None = None,
        full_hash: bool | None = None,
        log_path=None,
        extra_args: list[str] = (),
        env: dict | None = None,
        cpu: bool | None = None,
    ):
        self.model = str(model)
        self.host = host
        self.requested_port = port
        self.port = pick_port(port, host)
        cpu = is_cpu_host() if cpu is None else cpu
        self.env = server_env(
            env, cpu, backend, full_hash, os.path.isdir(self.model), list(extra_args)
        )
        self.command = server_command(self.model, self.port, host, list(extra_args), cpu)
        self.log_path = Path(log_path) if log_path else None
        self.proc: subprocess.Popen | None = None
        self.started_at = None
        self.ready_seconds = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Server:
        out = None
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            out = open(self.log_path, "wb")
        self.started_at = time.perf_counter()
        try:
            self.proc = subprocess.Popen(
                self.command,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT if out else None,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            if out:
                out.close()
        return self

    def log(self) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def wait_ready(self, timeout: float = DEFAULT_READY_TIMEOUT) -> list[str]:
        """Waits until /v1/models answers; returns the served model ids.
        Raises ServerError if the server exits first or time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            code = self.proc.poll()
            if code is not None:
                raise ServerError(
                    f"the server exited with code {code} before it was ready"
                    + (f"; log {self.log_path}:\n{self.log_tail()}" if self.log_path else "")
                )
            try:
                models = get_json(self.url + "/v1/models", timeout=2.0)
                self.ready_seconds = time.perf_counter() - self.started_at
                return [m["id"] for m in models.get("data", [])]
            except (OSError, ValueError, http.client.HTTPException):
                pass
            if time.monotonic() > deadline:
                raise ServerError(
                    f"the server did not answer {self.url}/v1/models within {timeout:.0f} s"
                )
            time.sleep(0.5)

    def wait_exit(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace: float = 20.0) -> int | None:
        """SIGTERM to the whole process group, SIGKILL after `grace` s."""
        if self.proc is None:
            return None
        pgid = self.proc.pid  # start_new_session: the group id is its pid
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                self.proc.poll()
                try:
                    os.killpg(pgid, 0)  # anyone left in the group?
                except ProcessLookupError:
                    break
                time.sleep(0.2)
            else:
                continue
            break
        return self.proc.wait()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def start_server(model, port: int = DEFAULT_PORT, **kwargs) -> Server:
    return Server(model, port, **kwargs).start()


def parse_load_log(text: str) -> dict:
    """What the q6bit loader logged: sampled/full sha256 and dequant cost
    (first occurrence; every rank logs the same)."""

    def first(regex):
        m = regex.search(text)
        return m.group(1) if m else None

    cost = first(DEQUANT_RE)
    return {
        "sampled_sha256": first(SAMPLED_RE),
        "full_sha256": first(FULL_RE),
        "dequant_seconds": float(cost) if cost else None,
    }


def split_args(text: str | None) -> list[str]:
    return shlex.split(text) if text else []

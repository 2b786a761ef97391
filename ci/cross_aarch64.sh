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
#  4. compiles (-c only) the torch extension's C++ (csrc/) for aarch64 against
#     the installed torch's headers, with setup.json's flags.
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
log "compile csrc/ (torch extension) for aarch64, -c only"
mapfile -t FLAGS < <("$PY" - "$REPO" <<'EOF'
# The flags setup.py + torch's BuildExtension use, from setup.json, with the
# x86 torch's (architecture-neutral) headers and the arm64 Highway headers.
import json, subprocess, sys, sysconfig
from torch.utils.cpp_extension import include_paths
repo = sys.argv[1]
cfg = json.load(open(f"{repo}/setup.json"))
name = cfg["extension"].rsplit(".", 1)[-1]
flags = ["-fPIC", "-std=c++20", "-DTORCH_API_INCLUDE_EXTENSION_H",
         f"-DTORCH_EXTENSION_NAME={name}", "-D_GLIBCXX_USE_CXX11_ABI=1"]
flags += [f"-D{k}={v}" for k, v in cfg["define_macros"]]
flags += [f"-I{repo}/{d}" for d in cfg["include_dirs"]]
flags += [f"-I{p}" for p in include_paths()]
flags += [f"-I{sysconfig.get_paths()['include']}"]
env = {"PKG_CONFIG_LIBDIR": "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig"}
flags += subprocess.run(["pkg-config", "--cflags", *cfg["pkg_config"]], env=env,
                        check=True, capture_output=True, text=True).stdout.split()
flags += cfg["extra_compile_args"]
print("\n".join(flags))
EOF
)
mkdir -p "$BUILD/csrc"
for src in $("$PY" -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["sources"]))' "$REPO/setup.json"); do
  obj="$BUILD/csrc/$(basename "$src").o"
  if aarch64-linux-gnu-g++ "${FLAGS[@]}" -c "$REPO/$src" -o "$obj"; then
    echo "aarch64 compile $src: OK ($(aarch64-linux-gnu-readelf -h "$obj" | sed -n "s/^ *Machine: *//p"))"
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

#!/usr/bin/env bash
# ppc64el CI on an x86-64 Debian host, safe to run twice: cross-compiles
# kernels/ + tests/cpp with g++-powerpc64le-linux-gnu and runs the GoogleTest
# suite under qemu-ppc64le. Highway 1.0.3 has no POWER ops (its PPC8 target is
# disabled), so the one compiled target is its portable fallback (SCALAR with
# GCC < 12.3); the run checks the kernels' portable code with a third
# compiler backend and ISA.
#
# Unlike aarch64, ppc64el is not added as a dpkg architecture: Debian's
# ppc64el libhwy1/libhwy-dev/libgtest-dev are downloaded with a private apt
# state (build-ppc64el/apt) and unpacked into build-ppc64el/sysroot, so the
# host's apt sources and package database are left as they were.
# Run it by hand:
#   qemu-ppc64le -L /usr/powerpc64le-linux-gnu build-ppc64el/kernels/tests/cpp/q6bit_kernel_test
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BUILD=${Q6BIT_PPC64EL_BUILD:-$REPO/build-ppc64el}
PREFIX="$BUILD/sysroot"

if [ "$(uname -m)" != x86_64 ] || ! command -v dpkg >/dev/null; then
  log "ppc64el cross tests: SKIPPED (they need an x86_64 Debian host; this is $(uname -m))"
  exit 0
fi

apt_install g++-powerpc64le-linux-gnu qemu-user

PACKAGES=(libhwy1 libhwy-dev libgtest-dev)
STAMP="$PREFIX/.unpacked-${PACKAGES[*]// /-}"
if [ ! -e "$STAMP" ]; then
  log "download Debian's ppc64el ${PACKAGES[*]} into $PREFIX"
  apt_dir="$BUILD/apt"
  rm -rf "$apt_dir" "$PREFIX"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$PREFIX"
  : >"$apt_dir/status"
  APT_OPTS=(-q -o APT::Architecture=ppc64el -o APT::Architectures::=ppc64el
    -o Dir::State::Lists="$apt_dir/lists" -o Dir::State::status="$apt_dir/status"
    -o Dir::Cache::archives="$apt_dir/archives" -o Dir::Cache::pkgcache=
    -o Dir::Cache::srcpkgcache= -o APT::Sandbox::User="$(id -un)")
  # A mirror may serve one stale index (seen: bookworm-security's ppc64el
  # Packages); what counts is that the packages below can be downloaded.
  if ! apt-get "${APT_OPTS[@]}" update >"$BUILD/apt-update.log" 2>&1; then
    echo "note: the private ppc64el 'apt-get update' reported (harmless if the download below works):"
    grep -E '^(E|W):' "$BUILD/apt-update.log" | sed 's/^/  /' || true
  fi
  (cd "$apt_dir/archives" && apt-get "${APT_OPTS[@]}" download "${PACKAGES[@]}")
  for deb in "$apt_dir"/archives/*.deb; do
    echo "unpack $(basename "$deb")"
    dpkg-deb -x "$deb" "$PREFIX"
  done
  touch "$STAMP"
fi

log "cross-compile kernels + GoogleTest for ppc64el ($BUILD/kernels)"
cmake -S "$REPO" -B "$BUILD/kernels" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_TOOLCHAIN_FILE="$REPO/ci/toolchains/powerpc64le-linux-gnu.cmake" \
  -DCMAKE_PREFIX_PATH="$PREFIX/usr" >/dev/null
cmake --build "$BUILD/kernels"

log "ppc64el GoogleTest under qemu-ppc64le"
OUT="$BUILD/kernel_test"
rm -f "$OUT.xml"
rc=0
qemu-ppc64le -L /usr/powerpc64le-linux-gnu "$BUILD/kernels/tests/cpp/q6bit_kernel_test" \
  --gtest_brief=1 --gtest_output="xml:$OUT.xml" >"$OUT.log" 2>&1 || rc=$?
[ "$rc" -eq 0 ] || tail -n 60 "$OUT.log"
"$PY" "$REPO/ci/gtest_summary.py" report "$OUT.xml" --name "ppc64le {target} (qemu)" \
  --exit-code "$rc"

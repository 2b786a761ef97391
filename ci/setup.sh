#!/usr/bin/env bash
# Everything q6bit needs on a fresh Debian/Ubuntu machine, safe to run twice:
# the C++ toolchain and Highway/GoogleTest from apt, torch and the Python
# dependencies from pip, then q6bit itself built against the installed torch.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

apt_install build-essential cmake ninja-build pkg-config libhwy-dev libgtest-dev

TORCH_VERSION=${Q6BIT_TORCH_VERSION:-2.13.0}
if ! "$PY" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  log "pip install torch==$TORCH_VERSION"
  pip_quiet "torch==$TORCH_VERSION"
fi
log "pip install q6bit (build against torch $("$PY" -c 'import torch;print(torch.__version__)'))"
pip_quiet pytest numpy safetensors tqdm setuptools wheel atheris hypothesis
pip_quiet --no-build-isolation -e "$REPO"
"$PY" -c "import q6bit; print('q6bit', q6bit.__version__, 'kernels dispatch to', q6bit.kernel_target())"

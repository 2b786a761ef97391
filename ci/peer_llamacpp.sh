#!/usr/bin/env bash
# Peer benchmark (manual, not part of CI): llama.cpp Q6_K vs bf16 GGUF on a q6bit
# test model. Builds llama-cpp-python from its sdist into its own venv (niced, one
# compile job: the box is shared), then runs ci/peer_llamacpp.py, which converts
# the model (convert_hf_to_gguf.py), quantizes it to Q6_K and measures prefill of
# 512 tokens and batch-1 greedy decode for both files.
#   bash ci/peer_llamacpp.sh [--version V] [peer_llamacpp.py args, e.g. --model smollm2 --json out.json]
# Env: PEER_VENV (/tmp/q6bit-peer-venv), PEER_WORK (/tmp/q6bit-peer: sdist, GGUFs, logs).
# GCC 12 with -march=native: AMX is switched off explicitly (GGML_AMX_* and
# -mno-amx-*), the AMX path crashed here before.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VERSION=0.3.36
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0
fi
if [[ "${1:-}" == "--version" ]]; then VERSION=${2:?--version V}; shift 2; fi
VENV=${PEER_VENV:-/tmp/q6bit-peer-venv}
WORK=${PEER_WORK:-/tmp/q6bit-peer}
SRC=$WORK/llama_cpp_python-$VERSION
mkdir -p "$WORK"

[[ -x $VENV/bin/python ]] || python3 -m venv --system-site-packages "$VENV"
if [[ ! -f $WORK/llama_cpp_python-$VERSION.tar.gz ]]; then
  "$VENV/bin/pip" download --no-binary :all: --no-deps "llama-cpp-python==$VERSION" -d "$WORK"
fi
[[ -d $SRC ]] || tar -xzf "$WORK/llama_cpp_python-$VERSION.tar.gz" -C "$WORK"
if ! "$VENV/bin/python" -c "import llama_cpp, sys; sys.exit(llama_cpp.__version__ != '$VERSION')" 2>/dev/null; then
  AMX="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
  export CMAKE_ARGS="-DGGML_NATIVE=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAVA_BUILD=OFF -DCMAKE_C_FLAGS='$AMX' -DCMAKE_CXX_FLAGS='$AMX'"
  echo "=== building llama-cpp-python $VERSION (log: $WORK/build.log), CMAKE_ARGS=$CMAKE_ARGS"
  CMAKE_BUILD_PARALLEL_LEVEL=1 nice -n 19 "$VENV/bin/pip" install -v --no-deps --no-cache-dir \
    "$WORK/llama_cpp_python-$VERSION.tar.gz" >"$WORK/build.log" 2>&1
  "$VENV/bin/pip" install diskcache jinja2 typing-extensions >/dev/null
fi

echo "=== host"
date -u; lscpu | grep "Model name"; nproc; uptime
echo "llama.cpp: $(git -C "$SRC/vendor/llama.cpp" rev-parse --short=9 HEAD 2>/dev/null ||
  grep -m1 -o 'ggml-org/llama.cpp@[0-9a-f]*' "$SRC/CHANGELOG.md")"
exec "$VENV/bin/python" "$REPO/ci/peer_llamacpp.py" --llama-src "$SRC/vendor/llama.cpp" --workdir "$WORK" "$@"

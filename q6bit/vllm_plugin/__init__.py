"""vLLM integration: serve q6bit checkpoints with an unmodified vLLM.

``register()`` is the ``vllm.general_plugins`` entry point (pyproject.toml),
so vLLM runs it in every process it starts (API server, engine core, each
worker). It registers:

* the ``q6bit`` quantization config (config.py): config.json's
  ``quantization_config.quant_method == "q6bit"`` selects it; linear layers
  and embeddings get q6bit methods (linear_method.py, embedding_method.py)
  whose packed parameters vLLM shards itself, dequantized per rank on the
  rank's device into the model dtype (packed.py);
* the ``q6bit-packed`` config (``--quantization q6bit-packed``): the same
  methods in packed mode, where the triples stay and every matmul and
  lookup computes from them (q6bit.ops.linear);
* the model loader for ``load_format="q6bit"`` (loader.py): streams the
  checkpoint, packed where a layer has a q6bit method, dequantized to fp16
  otherwise, with the completeness checks vLLM skips (checks.py) and one
  log line per rank (load_stats.py);
* wrappers of ``EngineArgs`` (engine_args.py) that pick ``load_format="q6bit"``
  for q6bit checkpoints and validate every shard header before any engine
  starts.

So ``vllm serve <q6bit checkpoint>`` needs no extra flag. Environment:
q6bit/envs.py (``Q6BIT_BACKEND``, ``Q6BIT_FULL_HASH``). This package's
modules import vllm; ``import q6bit`` never imports this package.
"""

from __future__ import annotations

from .names import LOAD_FORMAT, PACKED_METHOD, QUANT_METHOD

_registered = False


def register() -> None:
    """Entry point of the vllm.general_plugins group; safe to call twice."""
    global _registered
    if _registered:
        return
    from vllm.model_executor.layers.quantization import register_quantization_config
    from vllm.model_executor.model_loader import register_model_loader

    from .config import Q6BitConfig, Q6BitPackedConfig
    from .engine_args import wrap_engine_args
    from .loader import Q6BitModelLoader

    register_quantization_config(QUANT_METHOD)(Q6BitConfig)
    register_quantization_config(PACKED_METHOD)(Q6BitPackedConfig)
    register_model_loader(LOAD_FORMAT)(Q6BitModelLoader)
    wrap_engine_args()
    _registered = True

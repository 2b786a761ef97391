"""vLLM integration: serve q6bit checkpoints with an unmodified vLLM.

``register()`` is the ``vllm.general_plugins`` entry point (pyproject.toml),
so vLLM runs it in every process it starts (API server, engine core, each
worker). It registers:

* a marker quantization config ``q6bit``: config.json's
  ``quantization_config.quant_method == "q6bit"`` selects it; every linear
  layer gets vLLM's plain ``UnquantizedLinearMethod`` (weights arrive
  already dequantized), every other layer vLLM's default;
* a model loader for ``load_format="q6bit"`` (a ``DefaultModelLoader``
  whose weights come from ``q6bit.checkpoint.iter_checkpoint_weights``:
  every triple becomes its fp16 weight before ``model.load_weights`` sees
  it, vLLM then casts to the model dtype), with the completeness check
  that vLLM skips for quantized models (every parameter loaded, and every
  sibling of a stacked qkv_proj / gate_up_proj present);
* wrappers of ``EngineArgs.create_model_config`` / ``create_load_config``
  that pick ``load_format="q6bit"`` for q6bit checkpoints when the user left
  it on ``auto``, and validate every shard header (names, dtypes, shapes vs
  config.json, truncation) in the API process before any engine starts.

So ``vllm serve <q6bit checkpoint>`` needs no extra flag. Environment:
``Q6BIT_BACKEND=fast|reference`` (default fast) picks the dequantizer,
``Q6BIT_FULL_HASH=1`` adds a full-content sha256 to the load log. Only this
module imports vllm, and only when vLLM calls ``register()``.
"""
from __future__ import annotations

import contextlib
import logging
import os
import time

from .. import envs
from ..layout import QUANT_METHOD

LOAD_FORMAT = "q6bit"
# load formats that mean "read the checkpoint's safetensors": a q6bit
# checkpoint read that way would hand .qweight names to the model
_PLAIN_FORMATS = ("auto", "hf", "safetensors")

_registered = False


def _logger():
    # a child of vLLM's "vllm" logger: printed with vLLM's format and
    # process prefix in every process
    from vllm.logger import init_logger
    return init_logger("vllm.q6bit")


def _local_dir(model) -> str | None:
    return model if isinstance(model, str) and os.path.isdir(model) else None


def register() -> None:
    """Entry point of the vllm.general_plugins group; safe to call twice."""
    global _registered
    if _registered:
        return
    _register_quantization_config()
    _register_model_loader()
    _wrap_engine_args()
    _registered = True


# --------------------------------------------------------------------------
# marker quantization config


def _register_quantization_config() -> None:
    import torch
    from vllm.model_executor.layers.linear import LinearBase, UnquantizedLinearMethod
    from vllm.model_executor.layers.quantization import register_quantization_config
    from vllm.model_executor.layers.quantization.base_config import QuantizationConfig

    class Q6BitConfig(QuantizationConfig):
        """q6bit checkpoints: weights are dequantized to fp16 while loading
        (the q6bit loader), so every layer runs unquantized."""

        def __init__(self, group_size: int | None = None, bits: int = 6):
            super().__init__()
            self.group_size = group_size
            self.bits = bits

        def __repr__(self) -> str:
            return f"Q6BitConfig(bits={self.bits}, group_size={self.group_size})"

        def get_name(self):
            return QUANT_METHOD

        def get_supported_act_dtypes(self):
            return [torch.bfloat16, torch.float16, torch.float32]

        @classmethod
        def get_min_capability(cls) -> int:
            return 0  # no kernel of ours runs on the GPU

        @staticmethod
        def get_config_filenames():
            return []  # config.json's quantization_config is enough

        @classmethod
        def from_config(cls, config):
            return cls(config.get("group_size"), config.get("bits", 6))

        @classmethod
        def override_quantization_method(cls, hf_quant_cfg=None, user_quant=None,
                                         hf_config=None, **kwargs):
            if (isinstance(hf_quant_cfg, dict)
                    and hf_quant_cfg.get("quant_method") == QUANT_METHOD
                    and user_quant in (None, QUANT_METHOD)):
                return QUANT_METHOD
            return None

        def maybe_update_config(self, model_name=None, hf_config=None, revision=None,
                                **kwargs):
            return None

        def get_quant_method(self, layer, prefix):
            if isinstance(layer, LinearBase):
                return UnquantizedLinearMethod()
            return None  # embeddings, lm_head, attention, ...: vLLM's defaults

    register_quantization_config(QUANT_METHOD)(Q6BitConfig)


# --------------------------------------------------------------------------
# model loader


@contextlib.contextmanager
def _load_format_as(load_config, load_format: str):
    """DefaultModelLoader rejects unknown load formats; borrow a known one."""
    saved = load_config.load_format
    load_config.load_format = load_format
    try:
        yield
    finally:
        load_config.load_format = saved


def _tp_rank() -> int:
    try:
        from vllm.distributed import get_tensor_model_parallel_rank
        return get_tensor_model_parallel_rank()
    except Exception:  # not initialized (single process use) or moved
        return 0


# vLLM warns once per weight whose dtype differs from its parameter's; every
# dequantized weight is fp16 by design, so those lines are summarized instead
_CAST_WARNING_LOGGER = "vllm.model_executor.models.utils"


class _Fp16CastWarnings(logging.Filter):
    def __init__(self):
        super().__init__()
        self.count, self.dtype = 0, None

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if (isinstance(record.msg, str) and record.msg.startswith("Attempted to load weight")
                and len(args) >= 3 and str(args[1]) == "torch.float16"):
            self.count += 1
            self.dtype = args[2]
            return False
        return True


class IncompleteModelError(ValueError):
    """The checkpoint lacks weights the model needs."""


def check_complete(model, loaded, checkpoint: str) -> None:
    """Every parameter of the model must have been loaded from the
    checkpoint (vLLM skips this check when a quantization is set)."""
    expected = {name for name, _ in model.named_parameters()}
    missing = sorted(expected - set(loaded))
    if missing:
        shown = "\n  ".join(missing[:20])
        more = f"\n  ... and {len(missing) - 20} more" if len(missing) > 20 else ""
        raise IncompleteModelError(
            f"q6bit: checkpoint {checkpoint} does not provide {len(missing)} of the "
            f"model's {len(expected)} parameters:\n  {shown}{more}")


def check_packed_siblings(yielded, packed_modules_mapping: dict, checkpoint: str) -> None:
    """vLLM stacks q_proj/k_proj/v_proj into one qkv_proj parameter (and
    gate/up into gate_up_proj): one loaded shard marks the whole parameter
    loaded, so a checkpoint missing one sibling would leave part of it
    uninitialized. Wherever the checkpoint names any sibling of a packed
    module, every sibling must be there."""
    groups: dict[tuple, set] = {}
    for name in yielded:
        parts = name.split(".")
        for i, part in enumerate(parts):
            for packed, subs in packed_modules_mapping.items():
                if part in subs:
                    key = (".".join(parts[:i]), packed, ".".join(parts[i + 1:]))
                    groups.setdefault(key, set()).add(part)
    missing = []
    for (prefix, packed, leaf), seen in sorted(groups.items()):
        for sub in packed_modules_mapping[packed]:
            if sub not in seen:
                missing.append(".".join(p for p in (prefix, sub, leaf) if p)
                               + f" (stacked into {packed} with "
                               + ", ".join(sorted(seen)) + ", which are present)")
    if missing:
        shown = "\n  ".join(missing[:20])
        raise IncompleteModelError(
            f"q6bit: checkpoint {checkpoint} lacks {len(missing)} weight(s):\n  {shown}")


def _register_model_loader() -> None:
    from vllm.model_executor.model_loader import register_model_loader
    from vllm.model_executor.model_loader.default_loader import DefaultModelLoader

    @register_model_loader(LOAD_FORMAT)
    class Q6BitModelLoader(DefaultModelLoader):
        """Streams q6bit checkpoints: each X.qweight/.zero_point/.scales
        triple reaches the model as the plain fp16 weight X."""

        def _prepare_weights(self, *args, **kwargs):
            with _load_format_as(self.load_config, "safetensors"):
                return super()._prepare_weights(*args, **kwargs)

        def download_model(self, model_config) -> None:
            with _load_format_as(self.load_config, "safetensors"):
                super().download_model(model_config)

        def _checkpoint_dir(self, model_config) -> str:
            local = _local_dir(model_config.model)
            if local:
                return local
            # a hub id: fetch the safetensors (config.json is already there)
            folder, *_ = self._prepare_weights(model_config.model, None,
                                               model_config.revision, False, None)
            return folder

        def get_all_weights(self, model_config, model):
            from ..checkpoint import LoadStats, is_q6bit_checkpoint, iter_checkpoint_weights

            log = _logger()
            path = self._checkpoint_dir(model_config)
            if not is_q6bit_checkpoint(path):
                log.info("q6bit: %s is not a q6bit checkpoint; loading it as plain "
                         "safetensors", path)
                with _load_format_as(self.load_config, "safetensors"):
                    yield from super().get_all_weights(model_config, model)
                return
            backend = envs.backend()
            stats = LoadStats(full_hash=envs.full_hash())
            progress = bool(getattr(self.load_config, "use_tqdm_on_load", True)) \
                and _tp_rank() == 0
            import torch
            log.info("q6bit: loading %s (backend %s, %d threads)", path, backend,
                     torch.get_num_threads())
            t0 = time.perf_counter()
            if not self.counter_before_loading_weights:  # for vLLM's "took" line
                self.counter_before_loading_weights = t0
            self._q6bit_names = names = set()
            for name, tensor in iter_checkpoint_weights(path, backend=backend, stats=stats,
                                                        progress=progress):
                names.add(name)
                yield name, tensor
            log.info("q6bit: dequant cost %.3f s (backend %s, %d tensors, %.1f M weights "
                     "dequantized; %.3f s for the whole weight stream, of which %.3f s "
                     "reading the files)",
                     stats.dequant_seconds, backend, stats.tensors, stats.weights / 1e6,
                     time.perf_counter() - t0, stats.read_seconds)
            log.info("q6bit: sampled sha256 %s", stats.sampled_sha256())
            if stats.full_sha256():
                log.info("q6bit: full sha256 %s", stats.full_sha256())
            # models with extra weight sources (rare) keep vLLM's handling
            with _load_format_as(self.load_config, "safetensors"):
                for source in getattr(model, "secondary_weights", ()):
                    yield from self._get_weights_iterator(source)

        def load_weights(self, model, model_config) -> None:
            captured = {}
            original = model.load_weights

            def load_and_capture(weights, *args, **kwargs):
                loaded = original(weights, *args, **kwargs)
                captured["loaded"] = loaded
                return loaded

            model.load_weights = load_and_capture  # instance attribute, removed below
            casts = _Fp16CastWarnings()
            cast_logger = logging.getLogger(_CAST_WARNING_LOGGER)
            cast_logger.addFilter(casts)
            try:
                super().load_weights(model, model_config)
            finally:
                cast_logger.removeFilter(casts)
                with contextlib.suppress(AttributeError):
                    del model.load_weights
            if casts.count:
                _logger().info("q6bit: suppressed %d warnings of vLLM about loading fp16 "
                               "weights into %s parameters (dequantized weights are fp16 by "
                               "design; vLLM casts them)", casts.count, casts.dtype)
            loaded = captured.get("loaded")
            if loaded is None:
                _logger().warning("q6bit: %s.load_weights returned no names; cannot "
                                  "check that every weight was loaded",
                                  type(model).__name__)
                return
            check_complete(model, loaded, str(model_config.model))
            check_packed_siblings(getattr(self, "_q6bit_names", ()),
                                  getattr(model, "packed_modules_mapping", None) or {},
                                  str(model_config.model))

    return Q6BitModelLoader


# --------------------------------------------------------------------------
# EngineArgs: pick the q6bit loader by itself, validate early


def _wrap_engine_args() -> None:
    from vllm.engine.arg_utils import EngineArgs

    if getattr(EngineArgs, "_q6bit_wrapped", False):
        return
    create_model_config = EngineArgs.create_model_config
    create_load_config = EngineArgs.create_load_config

    def _use_q6bit(self, reason: str) -> None:
        if self.load_format in _PLAIN_FORMATS:
            if self.load_format != "auto":
                _logger().warning("q6bit: load_format %r cannot read q6bit triples; "
                                  "using %r", self.load_format, LOAD_FORMAT)
            self.load_format = LOAD_FORMAT
            _logger().info("q6bit: %s is a q6bit checkpoint (%s): load_format=%s",
                           self.model, reason, LOAD_FORMAT)

    def q6bit_create_model_config(self, *args, **kwargs):
        model_config = create_model_config(self, *args, **kwargs)
        if getattr(model_config, "quantization", None) == QUANT_METHOD:
            _use_q6bit(self, "quantization_config")
            local = _local_dir(model_config.model)
            if local:
                # fail before any engine process starts: every shard's header
                # (complete triples, dtypes, shapes vs config.json, truncation)
                from ..checkpoint import plan_checkpoint
                plan_checkpoint(local, check_scales=True)
        return model_config

    def q6bit_create_load_config(self, *args, **kwargs):
        if self.load_format in _PLAIN_FORMATS and _local_dir(self.model):
            from ..checkpoint import is_q6bit_checkpoint
            if is_q6bit_checkpoint(self.model):
                _use_q6bit(self, "config.json")
        return create_load_config(self, *args, **kwargs)

    EngineArgs.create_model_config = q6bit_create_model_config
    EngineArgs.create_load_config = q6bit_create_load_config
    EngineArgs._q6bit_wrapped = True

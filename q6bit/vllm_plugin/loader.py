"""The q6bit model loader (load_format="q6bit"): streams a validated q6bit
checkpoint into the model.

* A triple whose layer has a q6bit method (q6bit.vllm_plugin.config) reaches
  the model packed, as ``<module>.qweight/.zero_point/.scales``: vLLM's layer
  loaders narrow it to the rank's shard, and the method dequantizes that
  shard after loading.
* Any other triple (a layer type without a q6bit method, e.g. fused MoE
  experts) is dequantized here to fp16 and handed over as the plain weight X.
* Plain tensors (norms) pass through.

Then the completeness checks vLLM skips for quantized models, and one log
line per rank: what that rank dequantized, of the model's total.
"""

from __future__ import annotations

import contextlib
import logging
import time

import torch
from vllm.model_executor.model_loader.default_loader import DefaultModelLoader

from .. import envs, ops
from .. import layout as fmt
from ..checkpoint import is_q6bit_checkpoint, iter_checkpoint_weights, plan_checkpoint
from . import load_stats
from .checks import check_complete, check_packed_siblings
from .engine_args import local_dir
from .logs import logger
from .packed import has_packed_params
from .routing import ModelNames


@contextlib.contextmanager
def _load_format_as(load_config, load_format: str):
    """DefaultModelLoader rejects unknown load formats; borrow a known one."""
    saved = load_config.load_format
    load_config.load_format = load_format
    try:
        yield
    finally:
        load_config.load_format = saved


def _ranks() -> tuple[int, int, int, int]:
    """(global rank, world size, tensor-parallel rank, tensor-parallel size)."""
    try:
        from vllm.distributed import (
            get_tensor_model_parallel_rank,
            get_tensor_model_parallel_world_size,
        )

        tp_rank, tp = get_tensor_model_parallel_rank(), get_tensor_model_parallel_world_size()
    except Exception:  # not initialized (single process use) or moved
        tp_rank, tp = 0, 1
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size(), tp_rank, tp
    return tp_rank, tp, tp_rank, tp


# vLLM warns once per weight whose dtype differs from its parameter's; every
# weight the fallback dequantizes is fp16 by design, so those lines are
# summarized instead
_CAST_WARNING_LOGGER = "vllm.model_executor.models.utils"


class _Fp16CastWarnings(logging.Filter):
    def __init__(self):
        super().__init__()
        self.count, self.dtype = 0, None

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if (
            isinstance(record.msg, str)
            and record.msg.startswith("Attempted to load weight")
            and len(args) >= 3
            and str(args[1]) == "torch.float16"
        ):
            self.count += 1
            self.dtype = args[2]
            return False
        return True


class Q6BitModelLoader(DefaultModelLoader):
    """Streams q6bit checkpoints (module docstring)."""

    def _prepare_weights(self, *args, **kwargs):
        with _load_format_as(self.load_config, "safetensors"):
            return super()._prepare_weights(*args, **kwargs)

    def download_model(self, model_config) -> None:
        with _load_format_as(self.load_config, "safetensors"):
            super().download_model(model_config)

    def _checkpoint_dir(self, model_config) -> str:
        local = local_dir(model_config.model)
        if local:
            return local
        # a hub id: fetch the safetensors (config.json is already there)
        folder, *_ = self._prepare_weights(
            model_config.model, None, model_config.revision, False, None
        )
        return folder

    def get_all_weights(self, model_config, model):
        path = self._checkpoint_dir(model_config)
        if not is_q6bit_checkpoint(path):
            logger().info(
                "q6bit: %s is not a q6bit checkpoint; loading it as plain safetensors", path
            )
            with _load_format_as(self.load_config, "safetensors"):
                yield from super().get_all_weights(model_config, model)
            return
        plan = plan_checkpoint(path)
        stats = load_stats.start(plan.quantized_weights)
        rank = _ranks()[0]
        logger().info(
            "q6bit: loading %s (backend %s, %d threads)",
            path,
            envs.backend(),
            torch.get_num_threads(),
        )
        if not self.counter_before_loading_weights:  # for vLLM's "took" line
            self.counter_before_loading_weights = time.perf_counter()
        self._q6bit_names = names = set()
        self._q6bit_triples = set(plan.triples)
        progress = bool(getattr(self.load_config, "use_tqdm_on_load", True)) and rank == 0
        names_in_model = ModelNames(model)
        for name, tensor in iter_checkpoint_weights(
            path,
            backend=envs.backend(),
            stats=stats,
            progress=progress,
            packed=names_in_model.packed_prefix,
            keep=names_in_model.keeps,
            plan=plan,
        ):
            names.add(name)
            yield name, tensor
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
            logger().info(
                "q6bit: suppressed %d warnings of vLLM about loading fp16 weights "
                "into %s parameters (weights of layers without a q6bit method are "
                "dequantized to fp16; vLLM casts them)",
                casts.count,
                casts.dtype,
            )
        loaded = captured.get("loaded")
        if loaded is None:
            logger().warning(
                "q6bit: %s.load_weights returned no names; cannot check that "
                "every weight was loaded",
                type(model).__name__,
            )
        else:
            check_complete(model, loaded, str(model_config.model))
        fallback = sorted(
            set(getattr(self, "_q6bit_names", ())) & getattr(self, "_q6bit_triples", set())
        )
        if fallback:
            logger().info(
                "q6bit: %d weights of layers without a q6bit method were dequantized "
                "while loading (fp16, then vLLM casts), e.g. %s",
                len(fallback),
                ", ".join(fallback[:3]),
            )
        check_packed_siblings(
            getattr(self, "_q6bit_names", ()),
            getattr(model, "packed_modules_mapping", None) or {},
            str(model_config.model),
        )
        packed = sum(
            m.qweight.shape[0] * m.qweight.shape[1] * fmt.group_size_of(m.qweight.shape)
            for m in {id(m): m for m in model.modules() if has_packed_params(m)}.values()
            if not getattr(m.quant_method, "tied_to", None)
        )
        load_stats.current().start_bar(packed, enabled=_ranks()[0] == 0)

    def load_model(self, vllm_config, model_config, prefix: str = ""):
        model = super().load_model(vllm_config, model_config, prefix)
        stats = load_stats.current()
        stats.close_bar()
        if stats.model_weights:
            _log_rank(stats)
            _log_held_bytes(model)
        return model


def held_bytes(model: torch.nn.Module) -> int:
    """Bytes of the model's parameters and buffers, each storage once (a
    tied LM head shares the embedding's)."""
    storages = {}
    for t in list(model.parameters()) + list(model.buffers()):
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
    return sum(storages.values())


def _log_held_bytes(model: torch.nn.Module) -> None:
    rank, world, _, _ = _ranks()
    logger().info(
        "q6bit: rank %d/%d holds %.3f GB of parameters and buffers", rank, world,
        held_bytes(model) / 1e9,
    )  # fmt: skip


def _log_rank(stats: load_stats.RankLoad) -> None:
    rank, world, tp_rank, tp = _ranks()
    log = logger()
    growth = stats.peak_rss_growth_gb()
    log.info(
        "q6bit: rank %d/%d dequantized %.1f M of %.1f M weights in %.3f s (tp rank %d/%d; "
        "backend %s, %d tensors; files read in %.3f s; peak RSS +%s GB while loading)",
        rank,
        world,
        stats.weights / 1e6,
        stats.model_weights / 1e6,
        stats.dequant_seconds,
        tp_rank,
        tp,
        envs.backend(),
        stats.tensors,
        stats.read_seconds,
        "?" if growth is None else f"{growth:.3f}",
    )
    log.info(
        "q6bit: dequant cost %.3f s (backend %s, %d tensors, %.1f M weights dequantized)",
        stats.dequant_seconds,
        envs.backend(),
        stats.tensors,
        stats.weights / 1e6,
    )
    if stats.kept_packed:
        log.info(
            "q6bit: rank %d/%d keeps %.1f M weights packed (packed mode: computed from the "
            "triples in every matmul)",
            rank,
            world,
            stats.kept_packed / 1e6,
        )
        if not ops.linear_uses_tables():
            log.warning(
                "q6bit: this CPU's kernels (%s) have no AVX-512 VBMI, so packed mode decodes "
                "every weight in registers: it saves memory, but its matmuls are bound by their "
                "own instructions, measured from 0.4x to 1.9x bf16's speed by host and batch "
                "(BENCHMARKS.md). Where speed matters more than memory, serve dense: q6bit "
                "serve without --packed, or vLLM's --quantization q6bit.",
                ops.kernel_target(),
            )
    log.info("q6bit: sampled sha256 %s", stats.sampled_sha256())
    if stats.full_sha256():
        log.info("q6bit: full sha256 %s", stats.full_sha256())

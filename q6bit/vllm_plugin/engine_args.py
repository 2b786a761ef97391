"""Wrappers of EngineArgs.create_model_config / create_load_config: pick
load_format="q6bit" for q6bit checkpoints when the user left it on "auto",
and validate every shard header in the API process before any engine
starts."""

from __future__ import annotations

import functools

from .logs import logger
from .names import LOAD_FORMAT, METHODS

# load formats that mean "read the checkpoint's safetensors": a q6bit
# checkpoint read that way would hand .qweight names to the model
_PLAIN_FORMATS = ("auto", "hf", "safetensors")


def local_dir(model) -> str | None:
    import os

    return model if isinstance(model, str) and os.path.isdir(model) else None


def wrap_engine_args() -> None:
    from vllm.engine.arg_utils import EngineArgs

    if getattr(EngineArgs, "_q6bit_wrapped", False):
        return
    create_model_config = EngineArgs.create_model_config
    create_load_config = EngineArgs.create_load_config

    def _use_q6bit(self, reason: str) -> None:
        if self.load_format in _PLAIN_FORMATS:
            if self.load_format != "auto":
                logger().warning(
                    "q6bit: load_format %r cannot read q6bit triples; using %r",
                    self.load_format,
                    LOAD_FORMAT,
                )
            self.load_format = LOAD_FORMAT
            logger().info(
                "q6bit: %s is a q6bit checkpoint (%s): load_format=%s",
                self.model,
                reason,
                LOAD_FORMAT,
            )

    @functools.wraps(create_model_config)
    def q6bit_create_model_config(self, *args, **kwargs):
        local = local_dir(self.model)
        if local:
            # fail before vLLM reads config.json and before any engine process
            # starts: a folder marked q6bit or holding triples is validated in
            # full (quantization_config, every header, the scales)
            from ..checkpoint import check_before_serving

            check_before_serving(local)
        model_config = create_model_config(self, *args, **kwargs)
        if getattr(model_config, "quantization", None) in METHODS:
            _use_q6bit(self, "quantization_config")
        return model_config

    @functools.wraps(create_load_config)
    def q6bit_create_load_config(self, *args, **kwargs):
        if self.load_format in _PLAIN_FORMATS and local_dir(self.model):
            from ..checkpoint import is_q6bit_checkpoint

            if is_q6bit_checkpoint(self.model):
                _use_q6bit(self, "config.json")
        return create_load_config(self, *args, **kwargs)

    EngineArgs.create_model_config = q6bit_create_model_config
    EngineArgs.create_load_config = q6bit_create_load_config
    EngineArgs._q6bit_wrapped = True

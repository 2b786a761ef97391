"""q6bit checkpoints on disk: validation (reader), streaming (stream),
writing (writer) and what q6bit knows about architectures."""

from .architectures import PRESETS, ModelShape
from .reader import (
    INDEX_FILE,
    CheckpointError,
    CheckpointPlan,
    TensorInfo,
    check_before_serving,
    holds_q6bit_triples,
    is_q6bit_checkpoint,
    plan_checkpoint,
    quantization_config,
    read_config,
    read_header,
    shard_files,
)
from .stream import LoadStats, iter_checkpoint_weights
from .writer import ShardWriter, dequantize_checkpoint, quantize_checkpoint, should_quantize

__all__ = [
    "PRESETS",
    "ModelShape",
    "INDEX_FILE",
    "CheckpointError",
    "CheckpointPlan",
    "TensorInfo",
    "check_before_serving",
    "holds_q6bit_triples",
    "is_q6bit_checkpoint",
    "plan_checkpoint",
    "quantization_config",
    "read_config",
    "read_header",
    "shard_files",
    "LoadStats",
    "iter_checkpoint_weights",
    "ShardWriter",
    "quantize_checkpoint",
    "dequantize_checkpoint",
    "should_quantize",
]

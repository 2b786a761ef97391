"""The q6bit checkpoint format, stated once for the Python side.

For every quantized weight ``X`` a checkpoint holds three tensors instead of
``X`` (the C++ twin is kernels/q6bit_format.h):

==============  =======  ==========================  =========================
name            dtype    shape                       meaning
==============  =======  ==========================  =========================
X.qweight       uint8    [..., n_groups, 3*G/4]      4 codes of 6 bits per 3 B
X.zero_point    int8     [..., n_groups, 1]          one zero point per group
X.scales        float16  [..., n_groups, 1]          one scale per group
==============  =======  ==========================  =========================

``w = fp16_rne(float(code - zero_point) * float(scale))``, shape
``[..., n_groups * G]``. Names are grouped by the part before the last dot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

# config.json: "quantization_config": {"quant_method": "q6bit", "bits": 6, "group_size": G}
QUANT_METHOD = "q6bit"
BITS = 6
QWEIGHT, ZERO_POINT, SCALES = "qweight", "zero_point", "scales"
PARTS = (QWEIGHT, ZERO_POINT, SCALES)
DTYPES = {QWEIGHT: torch.uint8, ZERO_POINT: torch.int8, SCALES: torch.float16}
CODE_BITS = 6
CODES_PER_TRIPLET, BYTES_PER_TRIPLET = 4, 3
DEFAULT_GROUP_SIZE = 128


def split_name(name: str) -> tuple[str, str] | None:
    """``("X", part)`` for a triple member ``X.part``, else None."""
    base, dot, part = name.rpartition(".")
    if dot and part in PARTS:
        return base, part
    return None


def group_size_of(qweight_shape) -> int:
    """Group size G of a packed tensor's shape [..., n_groups, 3*G/4]."""
    return qweight_shape[-1] // BYTES_PER_TRIPLET * CODES_PER_TRIPLET


def packed_bytes(group_size: int) -> int:
    return group_size // CODES_PER_TRIPLET * BYTES_PER_TRIPLET


def dequantized_shape(qweight_shape) -> tuple[int, ...]:
    """Shape of the fp16 weight: the last two dims merged."""
    *outer, n_groups, _ = qweight_shape
    return (*outer, n_groups * group_size_of(qweight_shape))


def check_group_size(group_size: int) -> None:
    if group_size <= 0 or group_size % CODES_PER_TRIPLET:
        raise ValueError(f"group size must be a positive multiple of 4, got {group_size}")


@dataclass
class Triple:
    """The three members of one quantized weight, as they are found."""

    name: str
    parts: dict = field(default_factory=dict)  # part -> value (tensor, or anything)

    def missing(self) -> list[str]:
        return [f"{self.name}.{p}" for p in PARTS if p not in self.parts]

    def complete(self) -> bool:
        return not self.missing()


class IncompleteTripleError(ValueError):
    """A quantized weight lacks one of .qweight / .zero_point / .scales."""


def missing_message(triples) -> str:
    lines = [f"  {t.name}: missing {', '.join(t.missing())}" for t in triples]
    return (
        "incomplete q6bit triples (each quantized weight needs .qweight, "
        ".zero_point and .scales):\n" + "\n".join(lines)
    )

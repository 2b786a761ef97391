"""q6bit: bit-exact, memory-speed 6-bit -> fp16 dequantization.

Public API:
    recover_from_quant(named_tensors, backend="fast")  # drop-in for the seed
    dequantize(qweight, zero_point, scales, backend="fast")
    unpack(qweight, backend="fast")
    quantize(weight, group_size=128) -> (qweight, zero_point, scales)
Seed-compatible aliases: calculate_dequant, unsqueeze_from_6bit.
The oracle: q6bit.reference.
"""

from .hashing import full_sha256, sampled_sha256
from .ops import dequantize, force_kernel_target, kernel_target, kernel_targets, unpack
from .quantize import pack_6bit, quantize
from .recover import recover_from_quant

__version__ = "0.1.0"

# The seed's names, running on the fast kernels.
calculate_dequant = dequantize
unsqueeze_from_6bit = unpack

__all__ = [
    "recover_from_quant",
    "dequantize",
    "unpack",
    "quantize",
    "pack_6bit",
    "calculate_dequant",
    "unsqueeze_from_6bit",
    "kernel_target",
    "kernel_targets",
    "force_kernel_target",
    "sampled_sha256",
    "full_sha256",
]

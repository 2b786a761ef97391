"""The names q6bit registers with vLLM, in one place (imported by the light
modules that run before vLLM's model classes are loaded)."""

from ..layout import QUANT_METHOD

LOAD_FORMAT = "q6bit"  # load_format of the q6bit model loader
# --quantization q6bit-packed (or quantization_config "packed": true): the
# weights stay packed and every matmul computes from them (packed mode)
PACKED_METHOD = "q6bit-packed"
METHODS = (QUANT_METHOD, PACKED_METHOD)
PACKED_KEY = "packed"  # the quantization_config field selecting packed mode

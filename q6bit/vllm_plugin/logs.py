"""q6bit's logger inside vLLM processes."""

from __future__ import annotations


def logger():
    # a child of vLLM's "vllm" logger: printed with vLLM's format and
    # process prefix in every process
    from vllm.logger import init_logger

    return init_logger("vllm.q6bit")

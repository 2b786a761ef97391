"""Registers the Triton kernel as the CUDA implementation of
torch.ops.q6bit.dequantize, dequantize.out and dequantize_list (few
launches: q6bit/triton_dequant_list.py) (torch.library), so torch.ops
calls, torch.compile, fake tensors and opcheck all see the one op
(q6bit.ops.dequantize_list calls the list kernel directly when eager:
see there why).

The schemas belong to the C++ op library (csrc/ops.cpp). Where q6bit._C is
not built (a GPU host without Highway), the same schema strings are defined
here in Python, with fake (shape) kernels; only then. Registration imports
no Triton: the kernel module loads on the first CUDA call.
"""

from __future__ import annotations

import importlib.util

import torch

from . import layout as fmt

SCHEMAS = {
    "dequantize": "dequantize(Tensor qweight, Tensor zero_point, Tensor scales, *, "
    "ScalarType dtype=float16) -> Tensor",
    "dequantize.out": "dequantize.out(Tensor qweight, Tensor zero_point, Tensor scales, *, "
    "Tensor(a!) out) -> Tensor(a!)",
    "dequantize_list": "dequantize_list(Tensor[] qweights, Tensor[] zero_points, "
    "Tensor[] scales) -> Tensor[]",
}
_state: bool | str | None = None  # True once registered, else why not
_libs: list = []  # keeps the registrations alive


def _defined_schemas() -> dict[str, str]:
    found = {}
    for op in ("dequantize", "dequantize_list"):
        for s in torch._C._jit_get_schemas_for_operator(f"q6bit::{op}"):
            name = op + (f".{s.overload_name}" if s.overload_name else "")
            found[name] = str(s).removeprefix("q6bit::")
    return found


def _normalized(schema: str) -> str:
    """A schema string as torch prints it (defaults as numbers, e.g. dtype=5)."""
    return str(torch._C.parse_schema(f"q6bit::{schema}")).removeprefix("q6bit::")


def _output_shape(qweight: torch.Tensor) -> tuple[int, ...]:
    return fmt.dequantized_shape(qweight.shape)


def _fake_dequantize(qweight, zero_point, scales, *, dtype=None):
    return qweight.new_empty(_output_shape(qweight), dtype=dtype or torch.float16)


def _fake_dequantize_out(qweight, zero_point, scales, *, out):
    return out.resize_(_output_shape(qweight))


def _fake_dequantize_list(qweights, zero_points, scales):
    return [q.new_empty(_output_shape(q), dtype=torch.float16) for q in qweights]


def _define_in_python() -> None:
    """The C++ library's schemas, for hosts where q6bit._C is absent."""
    lib = torch.library.Library("q6bit", "FRAGMENT")
    for schema in SCHEMAS.values():
        lib.define(schema)
    _libs.append(lib)
    torch.library.register_fake("q6bit::dequantize", _fake_dequantize, lib=lib)
    torch.library.register_fake("q6bit::dequantize.out", _fake_dequantize_out, lib=lib)
    torch.library.register_fake("q6bit::dequantize_list", _fake_dequantize_list, lib=lib)


def _dequantize_cuda(qweight, zero_point, scales, *, dtype=None):
    from . import triton_dequant

    return triton_dequant.dequantize(qweight, zero_point, scales, dtype)


def _dequantize_out_cuda(qweight, zero_point, scales, *, out):
    from . import triton_dequant

    triton_dequant.dequantize_into(qweight, zero_point, scales, out)
    return out.resize_(_output_shape(qweight))  # same storage, the weight's shape


def _dequantize_list_cuda(qweights, zero_points, scales):
    from . import triton_dequant_list

    return triton_dequant_list.dequantize_list(qweights, zero_points, scales)


def _register() -> bool | str:
    if importlib.util.find_spec("triton") is None:
        return "triton is not installed"
    if not torch.cuda.is_available():
        return "torch sees no CUDA device"
    try:
        from . import _C  # noqa: F401  (defines the schemas in C++)
    except ImportError:
        if not _defined_schemas():
            _define_in_python()
    found = _defined_schemas()
    for name, schema in SCHEMAS.items():
        if found.get(name) != _normalized(schema):
            return (
                f"q6bit::{name} has schema {found.get(name)!r}, the Triton kernel "
                f"implements {schema!r}"
            )
    lib = torch.library.Library("q6bit", "FRAGMENT")
    _libs.append(lib)
    torch.library.register_kernel("q6bit::dequantize", "cuda", _dequantize_cuda, lib=lib)
    torch.library.register_kernel("q6bit::dequantize.out", "cuda", _dequantize_out_cuda, lib=lib)
    torch.library.register_kernel("q6bit::dequantize_list", "cuda", _dequantize_list_cuda, lib=lib)
    return True


def ensure_registered() -> bool:
    """Registers once; True when torch.ops.q6bit.dequantize has the CUDA kernel."""
    global _state
    if _state is None:
        _state = _register()
    return _state is True


def why_not() -> str | None:
    """None when registered, else the reason (after ensure_registered())."""
    return None if _state is True else str(_state)

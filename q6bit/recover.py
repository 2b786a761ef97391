"""recover_from_quant: the drop-in replacement of the seed's function."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from . import layout as fmt
from .ops import check_backend, dequantize, dequantize_list


def collect_triples(named_tensors: Iterable[tuple[str, torch.Tensor]]):
    """Splits a list into (triples by base name, pass-through pairs)."""
    triples: dict[str, fmt.Triple] = {}
    passthrough = []
    if isinstance(named_tensors, (str, bytes, dict, torch.Tensor)) or not isinstance(
        named_tensors, Iterable
    ):
        raise TypeError(
            "recover_from_quant expects a list of (name, tensor) pairs, got "
            f"{type(named_tensors).__name__}"
        )
    for i, item in enumerate(named_tensors):
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise TypeError(
                f"recover_from_quant: item {i} must be a (name, tensor) pair, got {item!r:.100}"
            )
        name, tensor = item
        if not isinstance(name, str):
            raise TypeError(
                f"recover_from_quant: item {i}'s name must be a str, got {type(name).__name__}"
            )
        split = fmt.split_name(name)
        if split is None:
            passthrough.append((name, tensor))  # passed through as it is, whatever it is
            continue
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"{name}: must be a torch.Tensor, got {type(tensor).__name__}")
        base, part = split
        triple = triples.setdefault(base, fmt.Triple(base))
        if part in triple.parts:
            raise ValueError(f"{name}: appears twice in the list")
        triple.parts[part] = tensor
    incomplete = [t for t in triples.values() if not t.complete()]
    if incomplete:
        raise fmt.IncompleteTripleError(fmt.missing_message(incomplete))
    return triples, passthrough


def dequantize_triple(triple: fmt.Triple, backend: str = "fast") -> torch.Tensor:
    """The fp16 weight of one complete triple; errors name the weight."""
    p = triple.parts
    try:
        return dequantize(p[fmt.QWEIGHT], p[fmt.ZERO_POINT], p[fmt.SCALES], backend)
    except (ValueError, RuntimeError) as e:
        raise type(e)(f"{triple.name}: {e}") from e


def recover_from_quant(named_tensors, backend: str = "fast"):
    """[(name, tensor)] -> [(name, tensor)]: every ``X.qweight/.zero_point/
    .scales`` triple becomes ``(X, fp16 weight)``; other tensors pass through
    unchanged. Order is not significant (pass-through first, then weights in
    the order their triples were first seen)."""
    check_backend(backend)
    triples, out = collect_triples(named_tensors)
    parts = [
        (t.parts[fmt.QWEIGHT], t.parts[fmt.ZERO_POINT], t.parts[fmt.SCALES])
        for t in triples.values()
    ]
    try:
        weights = dequantize_list(parts, backend)
    except (ValueError, RuntimeError):
        for triple in triples.values():  # find the bad one: its error names it
            dequantize_triple(triple, backend)
        raise
    out.extend((t.name, w) for t, w in zip(triples.values(), weights))
    return out

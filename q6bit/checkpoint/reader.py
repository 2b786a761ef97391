"""Validating q6bit checkpoints before any weight is read: config.json, the
index and every shard header (complete triples, dtypes, shapes vs
config.json, truncation). Any inconsistency is a CheckpointError naming the
file and the tensor. Streaming the weights is checkpoint/stream.py's job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import layout as fmt
from .architectures import ModelShape
from .validate import (
    CheckpointError,
    TensorInfo,
    check_quantization_config,
    read_header,
    read_json_object,
    read_weight_map,
)

__all__ = ["CheckpointError", "TensorInfo", "read_header"]  # re-exported from validate

INDEX_FILE = "model.safetensors.index.json"
# safetensors dtype names of the triple members
_ST_DTYPES = {fmt.QWEIGHT: "U8", fmt.ZERO_POINT: "I8", fmt.SCALES: "F16"}
# how many missing weights a message lists
_SHOWN = 5


def read_config(path) -> dict:
    return read_json_object(Path(path) / "config.json", "config.json")


def quantization_config(config: dict) -> dict | None:
    qc = config.get("quantization_config")
    if isinstance(qc, dict) and qc.get("quant_method") == fmt.QUANT_METHOD:
        return qc
    return None


def is_q6bit_checkpoint(path) -> bool:
    """True for a folder whose config.json marks it as a q6bit checkpoint
    (whether that quantization_config is valid is plan_checkpoint's job)."""
    try:
        return quantization_config(read_config(path)) is not None
    except CheckpointError:
        return False


def holds_q6bit_triples(path) -> bool:
    """True for a folder whose safetensors headers name q6bit triple members
    (X.qweight, ...), whatever config.json says; False where they cannot be
    read (the checkpoint is then not ours to judge)."""
    try:
        return any(fmt.split_name(name) for file in shard_files(path) for name in read_header(file))
    except CheckpointError:
        return False


def check_before_serving(path) -> CheckpointPlan | None:
    """What `q6bit serve` and the vLLM plugin run before any engine process
    starts: a folder that config.json marks as q6bit, or whose headers hold
    q6bit triples (then a missing quantization_config is an error, not a
    plain checkpoint), is validated in full, scales included. None for other
    folders."""
    if is_q6bit_checkpoint(path) or holds_q6bit_triples(path):
        return plan_checkpoint(path, check_scales=True)
    return None


def shard_files(path) -> list[Path]:
    """The checkpoint's safetensors files: those of the index, else all."""
    path = Path(path)
    index = path / INDEX_FILE
    if index.exists():
        files = sorted({path / name for name in read_weight_map(index).values()})
        missing = [f for f in files if not f.exists()]
        if missing:
            raise CheckpointError(f"{index}: lists missing shard(s) {[m.name for m in missing]}")
        return files
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise CheckpointError(f"{path}: no *.safetensors files")
    return files


def model_shape(config: dict, config_file: Path) -> ModelShape | None:
    try:
        return ModelShape.from_hf_config(config)
    except ValueError as e:
        raise CheckpointError(f"{config_file}: {e}") from e


def _check_triple(
    triple: fmt.Triple, group_size: int, expected: Callable[[str], tuple | None]
) -> None:
    """Dtypes and shapes of a complete triple of TensorInfos."""
    infos: dict[str, TensorInfo] = triple.parts
    for part, st_dtype in _ST_DTYPES.items():
        info = infos[part]
        if info.dtype != st_dtype:
            raise CheckpointError(
                f"{info.file}: tensor {info.name} has dtype {info.dtype}, q6bit needs {st_dtype}"
            )
    q = infos[fmt.QWEIGHT]
    if len(q.shape) < 2 or q.shape[-1] == 0 or q.shape[-1] % fmt.BYTES_PER_TRIPLET:
        raise CheckpointError(
            f"{q.file}: tensor {q.name} has shape {list(q.shape)}, "
            "q6bit needs [..., n_groups, 3*G/4]"
        )
    for part in (fmt.ZERO_POINT, fmt.SCALES):
        info = infos[part]
        if info.shape != (*q.shape[:-1], 1):
            raise CheckpointError(
                f"{info.file}: tensor {info.name} has shape {list(info.shape)},"
                f" expected {[*q.shape[:-1], 1]} to match {q.name}"
            )
    g = fmt.group_size_of(q.shape)
    if g != group_size:
        raise CheckpointError(
            f"{q.file}: tensor {q.name} has group size {g} but config.json's"
            f" quantization_config says {group_size}"
        )
    want = expected(triple.name)
    if want is not None and tuple(fmt.dequantized_shape(q.shape)) != tuple(want):
        raise CheckpointError(
            f"{q.file}: tensor {q.name} dequantizes to shape "
            f"{list(fmt.dequantized_shape(q.shape))} but config.json implies "
            f"{triple.name} is {list(want)}"
        )


@dataclass
class CheckpointPlan:
    """What a validated checkpoint holds, shard by shard."""

    files: list[Path]
    tensors: dict[Path, list[str]]  # file -> its tensor names, in file order
    triples: dict[str, fmt.Triple]  # base name -> Triple of TensorInfo
    plain: dict[str, TensorInfo]

    @property
    def quantized_weights(self) -> int:
        return sum(
            torch.Size(fmt.dequantized_shape(t.parts[fmt.QWEIGHT].shape)).numel()
            for t in self.triples.values()
        )


def plan_checkpoint(path, check_scales: bool = False) -> CheckpointPlan:
    """Reads config.json, the index and every shard header and validates the
    whole checkpoint before any tensor data is read (validate.py: file
    types, JSON, header types, sizes, offsets; here: quantization_config,
    complete triples, dtypes, shapes and the weights that config.json
    implies (Llama/Mistral/Qwen2/Qwen3), every name once, plain or triple);
    with check_scales, also that every scale is finite (reads the scales only)."""
    path = Path(path)
    config_file = path / "config.json"
    config = read_config(path)
    shape = model_shape(config, config_file)
    files = shard_files(path)
    tensors, triples, plain, seen = {}, {}, {}, {}
    for file in files:
        infos = read_header(file)
        tensors[file] = list(infos)
        for name, info in infos.items():
            if name in seen:
                raise CheckpointError(f"{file}: tensor {name} also appears in {seen[name]}")
            seen[name] = file
            split = fmt.split_name(name)
            if split is None:
                plain[name] = info
            else:
                triples.setdefault(split[0], fmt.Triple(split[0])).parts[split[1]] = info
    _check_index_places(path, seen)
    for name in sorted(plain.keys() & triples.keys()):
        parts = ", ".join(f"{i.name} in {i.file}" for i in triples[name].parts.values())
        raise CheckpointError(
            f"{plain[name].file}: tensor {name} is stored both plain and as a q6bit triple "
            f"({parts}); keep one of them"
        )
    hint = next(
        (fmt.group_size_of(t.parts[fmt.QWEIGHT].shape) for t in triples.values()
         if fmt.QWEIGHT in t.parts and t.parts[fmt.QWEIGHT].shape),
        "G",
    )  # fmt: skip
    group_size = check_quantization_config(config.get("quantization_config"), config_file, hint)
    expected = shape.linear_weight if shape else lambda name: None
    for triple in triples.values():
        if not triple.complete():
            where = ", ".join(f"{i.name} in {i.file}" for i in triple.parts.values())
            raise CheckpointError(
                f"{path}: quantized weight {triple.name} lacks "
                f"{', '.join(triple.missing())} (found {where})"
            )
        _check_triple(triple, group_size, expected)
    for name, info in plain.items():
        want = expected(name)
        if want is not None and info.shape != tuple(want):
            raise CheckpointError(
                f"{info.file}: tensor {name} has shape {list(info.shape)} but config.json "
                f"implies {list(want)}"
            )
    _check_nothing_missing(path, shape, triples, plain)
    plan = CheckpointPlan(files, tensors, triples, plain)
    if check_scales:
        _check_scales_finite(plan)
    return plan


def _check_index_places(path: Path, found: dict[str, Path]) -> None:
    """Every tensor the index places in a shard is in that shard."""
    index = path / INDEX_FILE
    if not index.exists():
        return
    for name, file in read_weight_map(index).items():
        if found.get(name) != path / file:
            where = f"in {found[name]}" if name in found else "in no shard"
            raise CheckpointError(
                f"{index}: weight_map puts tensor {name} in {file}, it is {where}"
            )


def _check_nothing_missing(path: Path, shape: ModelShape | None, triples, plain) -> None:
    """Every weight config.json implies is there. Stops at the first few
    missing ones: the work is bounded by the tensors present, not by the
    layers config.json claims."""
    if shape is None:
        return
    missing = []
    for name, _ in shape.iter_linear_weights():
        if name not in triples and name not in plain:
            missing.append(name)
            if len(missing) > _SHOWN:
                break
    if missing:
        raise CheckpointError(
            f"{path}: config.json implies weight(s) the checkpoint lacks "
            f"(neither X nor X.qweight/.zero_point/.scales): "
            f"{', '.join(missing[:_SHOWN])}{' ...' if len(missing) > _SHOWN else ''}"
        )


def _check_scales_finite(plan: CheckpointPlan) -> None:
    """Reads only the .scales tensors (1/64 of the packed bytes at G=128)."""
    from safetensors import safe_open

    by_file: dict[Path, list[str]] = {}
    for triple in plan.triples.values():
        info = triple.parts[fmt.SCALES]
        by_file.setdefault(info.file, []).append(info.name)
    for file, names in by_file.items():
        name = None
        try:
            with safe_open(str(file), framework="pt") as handle:
                for name in names:
                    finite = torch.isfinite(handle.get_tensor(name)).all()
                    if not finite:
                        raise CheckpointError(
                            f"{file}: tensor {name} has non-finite values (inf/NaN)"
                        )
        except CheckpointError:
            raise
        except Exception as e:  # safetensors' SafetensorError, OSError, ...
            what = f"tensor {name}" if name else "the file"
            raise CheckpointError(f"{file}: cannot read {what}: {type(e).__name__}: {e}") from e

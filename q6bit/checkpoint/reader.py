"""Validating q6bit checkpoints before any weight is read: config.json, the
index and every shard header (complete triples, dtypes, shapes vs
config.json, truncation). Any inconsistency is a CheckpointError naming the
file and the tensor. Streaming the weights is checkpoint/stream.py's job.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import layout as fmt
from .architectures import ModelShape

INDEX_FILE = "model.safetensors.index.json"
# safetensors dtype names of the triple members
_ST_DTYPES = {fmt.QWEIGHT: "U8", fmt.ZERO_POINT: "I8", fmt.SCALES: "F16"}


class CheckpointError(ValueError):
    """A checkpoint that must not be served; the message names file and tensor."""


def read_config(path) -> dict:
    config_file = Path(path) / "config.json"
    try:
        return json.loads(config_file.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{config_file}: cannot read config.json: {e}") from e


def quantization_config(config: dict) -> dict | None:
    qc = config.get("quantization_config")
    if isinstance(qc, dict) and qc.get("quant_method") == fmt.QUANT_METHOD:
        return qc
    return None


def is_q6bit_checkpoint(path) -> bool:
    """True for a folder whose config.json marks it as a q6bit checkpoint."""
    try:
        return quantization_config(json.loads((Path(path) / "config.json").read_text())) is not None
    except (OSError, json.JSONDecodeError):
        return False


def shard_files(path) -> list[Path]:
    """The checkpoint's safetensors files: those of the index, else all."""
    path = Path(path)
    index = path / INDEX_FILE
    if index.exists():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (OSError, json.JSONDecodeError, KeyError) as e:
            raise CheckpointError(f"{index}: unreadable index: {e}") from e
        files = sorted({path / f for f in weight_map.values()})
        missing = [f for f in files if not f.exists()]
        if missing:
            raise CheckpointError(f"{index}: lists missing shard(s) {[m.name for m in missing]}")
        return files
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise CheckpointError(f"{path}: no *.safetensors files")
    return files


@dataclass
class TensorInfo:
    file: Path
    name: str
    dtype: str
    shape: tuple[int, ...]


def read_header(file: Path) -> dict[str, TensorInfo]:
    """Tensor infos of one safetensors file, checking that the file holds
    every byte its header promises (a truncated file is caught here)."""
    try:
        size = file.stat().st_size
        with open(file, "rb") as f:
            (header_len,) = struct.unpack("<Q", f.read(8))
            if header_len > size - 8:
                raise CheckpointError(
                    f"{file}: truncated (header of {header_len} B in a file of {size} B)"
                )
            header = json.loads(f.read(header_len))
    except (OSError, struct.error, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{file}: not a readable safetensors file: {e}") from e
    infos, data_size = {}, size - 8 - header_len
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        end = entry["data_offsets"][1]
        if end > data_size:
            raise CheckpointError(
                f"{file}: truncated: tensor {name} needs bytes up to "
                f"{end} of the data section but the file has {data_size}"
            )
        infos[name] = TensorInfo(file, name, entry["dtype"], tuple(entry["shape"]))
    return infos


def _check_triple(
    triple: fmt.Triple, group_size: int | None, expected: dict[str, tuple[int, int]]
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
    if group_size and g != group_size:
        raise CheckpointError(
            f"{q.file}: tensor {q.name} has group size {g} but config.json's"
            f" quantization_config says {group_size}"
        )
    want = expected.get(triple.name)
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
    """Reads every header and validates the whole checkpoint before any
    weight is read: complete triples, dtypes, shapes and the weights that
    config.json implies (Llama/Mistral/Qwen2/Qwen3), no duplicates; with
    check_scales, also that every scale is finite (reads the scales only)."""
    config = read_config(path)
    qc = quantization_config(config) or {}
    shape = ModelShape.from_hf_config(config)
    expected = shape.linear_weights() if shape else {}
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
    for triple in triples.values():
        if not triple.complete():
            where = ", ".join(f"{i.name} in {i.file}" for i in triple.parts.values())
            raise CheckpointError(
                f"{path}: quantized weight {triple.name} lacks "
                f"{', '.join(triple.missing())} (found {where})"
            )
        _check_triple(triple, qc.get("group_size"), expected)
    missing = [n for n in expected if n not in triples and n not in plain]
    if missing:
        raise CheckpointError(
            f"{path}: config.json implies weight(s) the checkpoint lacks "
            f"(neither X nor X.qweight/.zero_point/.scales): "
            f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}"
        )
    plan = CheckpointPlan(files, tensors, triples, plain)
    if check_scales:
        _check_scales_finite(plan)
    return plan


def _check_scales_finite(plan: CheckpointPlan) -> None:
    """Reads only the .scales tensors (1/64 of the packed bytes at G=128)."""
    from safetensors import safe_open

    by_file: dict[Path, list[str]] = {}
    for triple in plan.triples.values():
        info = triple.parts[fmt.SCALES]
        by_file.setdefault(info.file, []).append(info.name)
    for file, names in by_file.items():
        with safe_open(str(file), framework="pt") as handle:
            for name in names:
                if not torch.isfinite(handle.get_tensor(name)).all():
                    raise CheckpointError(f"{file}: tensor {name} has non-finite values (inf/NaN)")

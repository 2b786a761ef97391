"""Checks of untrusted checkpoint files, before any tensor data is read:
opening only regular files (a FIFO would block), JSON with bounded size,
depth and integers, safetensors headers (types, dtypes, sizes vs
shape x dtype, offsets inside the file, no overlaps), the index (only
files inside the checkpoint folder) and quantization_config. Every
failure is a CheckpointError naming the file, the tensor or key, and what
is expected. plan_checkpoint (reader.py) puts these together.
"""

from __future__ import annotations

import json
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

from .. import layout as fmt

# safetensors' own limit on the JSON header (its MAX_HEADER_SIZE)
MAX_HEADER_BYTES = 100_000_000
# config.json / the index: far above any real one (Qwen3-8B's index: 60 KB)
MAX_JSON_FILE_BYTES = 50_000_000
# a dimension or an element count must fit torch's int64
MAX_DIM = 2**63 - 1
# bytes per element of the safetensors dtypes torch loads
ITEMSIZE = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "F8_E8M0": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}


class CheckpointError(ValueError):
    """A checkpoint that must not be served; the message names file and tensor."""


@dataclass
class TensorInfo:
    file: Path
    name: str
    dtype: str
    shape: tuple[int, ...]


def is_int(value) -> bool:
    """A JSON integer (bool is an int subclass in Python, not in JSON)."""
    return isinstance(value, int) and not isinstance(value, bool)


def read_regular(file: Path, limit: int, what: str) -> bytes:
    """The bytes of a regular file of at most `limit` bytes. Symlinks are
    followed (the Hugging Face cache links snapshots to blobs); a FIFO,
    device or folder is refused before open() could block on it."""
    with open_regular(file, what) as f:
        size = os.fstat(f.fileno()).st_size
        if size > limit:
            raise CheckpointError(f"{file}: {what} of {size} B exceeds the limit of {limit} B")
        return f.read(limit + 1)


def open_regular(file: Path, what: str):
    """A binary file object of a regular file (see read_regular)."""
    try:
        mode = os.stat(file).st_mode
        regular = stat.S_ISREG(mode)
        # O_NONBLOCK: if the file was swapped for a FIFO since stat, open
        # must not wait for a writer; fstat then refuses it
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK) if regular else None
    except OSError as e:
        raise CheckpointError(f"{file}: cannot open {what}: {e}") from e
    except ValueError as e:  # an embedded NUL byte in the name
        raise CheckpointError(f"{file!r}: cannot open {what}: {e}") from e
    if fd is None:
        raise CheckpointError(
            f"{file}: {what} must be a regular file (a FIFO, device or folder is refused)"
        )
    f = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        f.close()
        raise CheckpointError(f"{file}: {what} must be a regular file")
    return f


def _no_duplicate_keys(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def parse_json(data: bytes, file: Path, what: str):
    """JSON from untrusted bytes: UTF-8, no duplicate keys; every way the
    parser can fail (deep nesting, integers past Python's digit limit) is a
    CheckpointError."""
    try:
        return json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
    except UnicodeDecodeError as e:
        raise CheckpointError(f"{file}: {what} is not UTF-8: {e}") from e
    except RecursionError as e:
        raise CheckpointError(f"{file}: {what} is nested too deeply to parse") from e
    except ValueError as e:  # JSONDecodeError, duplicate keys, too many digits
        raise CheckpointError(f"{file}: {what} is not valid JSON: {e}") from e


def read_json_object(file: Path, what: str) -> dict:
    value = parse_json(read_regular(file, MAX_JSON_FILE_BYTES, what), file, what)
    if not isinstance(value, dict):
        raise CheckpointError(
            f"{file}: {what} must be a JSON object {{...}}, found a {type(value).__name__}"
        )
    return value


# --- safetensors headers ------------------------------------------------------


def read_header(file: Path) -> dict[str, TensorInfo]:
    """Tensor infos of one safetensors file, in file order, after checking
    everything safetensors will rely on: the file holds every byte its
    header promises, each tensor's bytes are shape x dtype, inside the data
    section, without overlaps or gaps (safetensors refuses gaps too)."""
    with open_regular(file, "safetensors file") as f:
        size = os.fstat(f.fileno()).st_size
        if size < 8:
            raise CheckpointError(f"{file}: truncated ({size} B, a safetensors file starts with 8)")
        (header_len,) = struct.unpack("<Q", f.read(8))
        if header_len > MAX_HEADER_BYTES:
            raise CheckpointError(
                f"{file}: header length {header_len} B exceeds safetensors' limit of "
                f"{MAX_HEADER_BYTES} B"
            )
        if header_len > size - 8:
            raise CheckpointError(
                f"{file}: truncated (header of {header_len} B in a file of {size} B)"
            )
        raw = f.read(header_len)
    header = parse_json(raw, file, "the safetensors header")
    if not isinstance(header, dict):
        raise CheckpointError(
            f"{file}: the safetensors header must be a JSON object, found a {type(header).__name__}"
        )
    _check_metadata(file, header.get("__metadata__"))
    infos, spans = {}, []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        info, span = _tensor_entry(file, name, entry)
        infos[name] = info
        spans.append((span, name))
    spans.sort()
    _check_spans(file, spans, size - 8 - header_len)
    _safetensors_accepts(file)
    return {name: infos[name] for _, name in spans}


def _safetensors_accepts(file: Path) -> None:
    """safetensors parses the header too (it maps the file, reads no tensor),
    so that what its stricter JSON refuses (NaN, lone surrogates, nesting
    over 128, where Python's json allows them in keys q6bit ignores) is
    refused here, not after weights of earlier shards were yielded."""
    from safetensors import safe_open

    try:
        with safe_open(str(file), framework="pt"):
            pass
    except Exception as e:  # SafetensorError, OSError, ...
        raise CheckpointError(f"{file}: safetensors refuses it: {type(e).__name__}: {e}") from e


def _check_metadata(file: Path, metadata) -> None:
    if metadata is None:
        return
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError(
            f"{file}: header key __metadata__ must be an object of strings, found {metadata!r:.200}"
        )


def _tensor_entry(file: Path, name: str, entry) -> tuple[TensorInfo, tuple[int, int]]:
    where = f"{file}: tensor {name}"
    if not isinstance(entry, dict):
        raise CheckpointError(f"{where}: header entry must be an object, found {entry!r:.200}")
    for key in ("dtype", "shape", "data_offsets"):
        if key not in entry:
            raise CheckpointError(f"{where}: header entry lacks {key!r}")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in ITEMSIZE:
        raise CheckpointError(
            f"{where}: unknown dtype {dtype!r:.100} (known: {', '.join(ITEMSIZE)})"
        )
    if not isinstance(shape, list) or not all(is_int(d) and 0 <= d <= MAX_DIM for d in shape):
        raise CheckpointError(
            f"{where}: shape must be a list of integers in [0, 2^63), found {shape!r:.200}"
        )
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(is_int, offsets))):
        raise CheckpointError(
            f"{where}: data_offsets must be [begin, end] (two integers), found {offsets!r:.200}"
        )
    begin, end = offsets
    if not 0 <= begin <= end:
        raise CheckpointError(f"{where}: data_offsets {offsets} must satisfy 0 <= begin <= end")
    numel = 1
    for d in shape:
        numel *= d
        if numel > MAX_DIM:  # checked as it grows: a long shape costs no big-int work
            raise CheckpointError(f"{where}: shape {shape!r:.200} has 2^63 elements or more")
    if end - begin != numel * ITEMSIZE[dtype]:
        raise CheckpointError(
            f"{where}: data_offsets {offsets} span {end - begin} B but shape {shape} of "
            f"{dtype} needs {numel * ITEMSIZE[dtype]} B"
        )
    return TensorInfo(file, name, dtype, tuple(shape)), (begin, end)


def _check_spans(file: Path, spans: list, data_size: int) -> None:
    """Sorted (begin, end) spans must tile the data section exactly."""
    at = 0
    for (begin, end), name in spans:
        if begin < at:
            raise CheckpointError(
                f"{file}: tensor {name} (bytes {begin}..{end}) overlaps the tensor before it"
            )
        if begin > at:
            raise CheckpointError(
                f"{file}: tensor {name} starts at byte {begin} of the data section, after a "
                f"gap from byte {at} (safetensors needs the tensors back to back)"
            )
        if end > data_size:
            raise CheckpointError(
                f"{file}: truncated: tensor {name} needs bytes up to "
                f"{end} of the data section but the file has {data_size}"
            )
        at = end
    if at != data_size:
        raise CheckpointError(
            f"{file}: {data_size - at} B after the last tensor (the header accounts for {at} B "
            f"of a {data_size} B data section)"
        )


# --- index ------------------------------------------------------------------------


def read_weight_map(index_file: Path) -> dict[str, str]:
    """The index's weight_map {tensor: shard file}, each file inside the
    checkpoint folder (checked by name: a symlink inside the folder may
    point anywhere, as the Hugging Face cache's do)."""
    index = read_json_object(index_file, "the index")
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict):
        raise CheckpointError(
            f"{index_file}: key weight_map must be an object {{tensor: file}}, "
            f"found {type(weight_map).__name__}"
        )
    for tensor, name in weight_map.items():
        if not isinstance(name, str):
            raise CheckpointError(
                f"{index_file}: weight_map[{tensor!r}] must be a file name, found {name!r:.100}"
            )
        if not name or Path(name).is_absolute() or ".." in Path(name).parts or "\0" in name:
            raise CheckpointError(
                f"{index_file}: weight_map[{tensor!r}] names {name!r}, outside the checkpoint "
                f"folder (only file names relative to {index_file.parent} are read)"
            )
    return weight_map


# --- quantization_config -----------------------------------------------------------


def expected_quantization_config(group_size: int | str = "G") -> str:
    return (
        f'"quantization_config": {{"quant_method": "{fmt.QUANT_METHOD}", '
        f'"bits": {fmt.BITS}, "group_size": {group_size}}}'
    )


def check_quantization_config(qc, where, group_size_hint: int | str = "G") -> int:
    """The group size of a valid q6bit quantization_config; anything else is
    a CheckpointError that quotes what config.json must hold."""
    fix = f"; config.json must hold {expected_quantization_config(group_size_hint)}"
    if qc is None:
        raise CheckpointError(f"{where}: no quantization_config{fix}")
    if not isinstance(qc, dict):
        raise CheckpointError(f"{where}: quantization_config must be an object{fix}")
    if qc.get("quant_method") != fmt.QUANT_METHOD:
        raise CheckpointError(
            f"{where}: quantization_config.quant_method is {qc.get('quant_method')!r:.100}, "
            f"not {fmt.QUANT_METHOD!r}{fix}"
        )
    bits = qc.get("bits")
    if not is_int(bits) or bits != fmt.BITS:
        raise CheckpointError(
            f"{where}: quantization_config.bits is {bits!r:.100}, q6bit needs {fmt.BITS}{fix}"
        )
    g = qc.get("group_size")
    if not is_int(g) or g <= 0 or g % fmt.CODES_PER_TRIPLET:
        raise CheckpointError(
            f"{where}: quantization_config.group_size is {g!r:.100}, q6bit needs a positive "
            f"multiple of {fmt.CODES_PER_TRIPLET} (the G of X.qweight [..., n_groups, 3*G/4])"
            f"{fix}"
        )
    return g

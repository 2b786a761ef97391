"""Writing q6bit checkpoints: a Hugging Face safetensors model folder
(bf16/fp16/fp32) becomes a q6bit checkpoint (quantize_checkpoint), written
in shards with an index (ShardWriter).

Every linear weight, the embeddings and lm_head (2-D `*.weight` tensors
without "norm" in their name) become X.qweight/X.zero_point/X.scales; norms,
biases and everything else stay plain. Config and tokenizer files are kept;
config.json gains a quantization_config (quant_method "q6bit") and states
its dtype. Shards are written with an index, then read back and checked
against the reference dequantizer before the folder is moved into place.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import torch

from .. import layout as fmt
from ..hashing import tensor_sha256
from ..ops import dequantize
from ..quantize import quantize
from .reader import INDEX_FILE, read_config, shard_files
from .stream import iter_checkpoint_weights

# Source files never copied: weights are rewritten, everything else is kept.
_WEIGHT_PATTERNS = (
    "*.safetensors",
    "*.bin",
    "*.pt",
    "*.pth",
    "*.gguf",
    INDEX_FILE,
    "pytorch_model.bin.index.json",
)


def should_quantize(name: str, tensor: torch.Tensor) -> bool:
    return (
        name.endswith(".weight")
        and "norm" not in name
        and tensor.dim() == 2
        and tensor.is_floating_point()
    )


def _model_dtype(config: dict, tensors_dtype: torch.dtype | None) -> str:
    stated = config.get("dtype") or config.get("torch_dtype")
    if stated:
        return str(stated).replace("torch.", "")
    return str(tensors_dtype or torch.bfloat16).replace("torch.", "")


class ShardWriter:
    """Collects tensors and writes model-XXXXX.safetensors files of at most
    max_bytes each, then the index."""

    def __init__(self, folder: Path, max_bytes: int):
        self.folder, self.max_bytes = folder, max_bytes
        self.current: dict[str, torch.Tensor] = {}
        self.current_bytes = 0
        self.shards: list[dict[str, torch.Tensor]] = []
        self.total_bytes = 0

    def add(self, name: str, tensor: torch.Tensor) -> None:
        nbytes = tensor.numel() * tensor.element_size()
        if self.current and self.current_bytes + nbytes > self.max_bytes:
            self._flush()
        self.current[name] = tensor.contiguous()
        self.current_bytes += nbytes
        self.total_bytes += nbytes

    def _flush(self) -> None:
        from safetensors.torch import save_file

        n = len(self.shards) + 1
        save_file(
            self.current, str(self.folder / f"part-{n:05d}.safetensors"), metadata={"format": "pt"}
        )
        self.shards.append({k: None for k in self.current})
        self.current, self.current_bytes = {}, 0

    def finish(self) -> None:
        if self.current:
            self._flush()
        total, weight_map = len(self.shards), {}
        for i, names in enumerate(self.shards, 1):
            final = f"model-{i:05d}-of-{total:05d}.safetensors"
            (self.folder / f"part-{i:05d}.safetensors").rename(self.folder / final)
            weight_map.update({name: final for name in names})
        index = {"metadata": {"total_size": self.total_bytes}, "weight_map": weight_map}
        (self.folder / INDEX_FILE).write_text(json.dumps(index, indent=2, sort_keys=True))


def quantize_checkpoint(
    src,
    dst,
    group_size: int = fmt.DEFAULT_GROUP_SIZE,
    progress: bool = True,
    max_shard_gb: float = 2.0,
    force: bool = False,
) -> Path:
    """Writes the q6bit checkpoint of `src` to `dst` and returns dst."""
    from safetensors import safe_open
    from tqdm import tqdm

    fmt.check_group_size(group_size)
    src, dst = Path(src), Path(dst)
    if dst.exists() and not force:
        raise FileExistsError(f"{dst} exists; pass force=True (--force) to replace it")
    config = read_config(src)
    files = shard_files(src)
    dst.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", dir=dst.parent))
    work.chmod(0o755)
    try:
        writer = ShardWriter(work, int(max_shard_gb * 1e9))
        expected: dict[str, str] = {}  # X -> sha256 of its fp16 weight
        first_dtype, quantized = None, []
        with tqdm(
            total=len(files), unit="shard", desc="q6bit quantize", disable=not progress
        ) as bar:
            for file in files:
                with safe_open(str(file), framework="pt") as f:
                    for name in f.keys():
                        t = f.get_tensor(name)
                        first_dtype = first_dtype or (t.dtype if t.is_floating_point() else None)
                        if not should_quantize(name, t):
                            writer.add(name, t)
                            continue
                        if t.shape[-1] % group_size:
                            raise ValueError(
                                f"{file}: {name} has input dim {t.shape[-1]}, not a multiple "
                                f"of --group-size {group_size}; choose a group size dividing it"
                            )
                        q, z, s = quantize(t, group_size)
                        expected[name] = tensor_sha256(dequantize(q, z, s))
                        quantized.append(name)
                        writer.add(f"{name}.{fmt.QWEIGHT}", q)
                        writer.add(f"{name}.{fmt.ZERO_POINT}", z)
                        writer.add(f"{name}.{fmt.SCALES}", s)
                bar.update(1)
        writer.finish()
        for item in src.iterdir():
            if item.is_file() and not any(item.match(p) for p in _WEIGHT_PATTERNS):
                shutil.copy2(item, work / item.name)
        config["dtype"] = _model_dtype(config, first_dtype)
        config.pop("torch_dtype", None)
        config["quantization_config"] = {
            "quant_method": fmt.QUANT_METHOD,
            "bits": 6,
            "group_size": group_size,
            "format": "X.qweight uint8 [..., n_groups, 3*G/4], X.zero_point int8 "
            "[..., n_groups, 1], X.scales float16 [..., n_groups, 1]",
            "quantized_weights": len(quantized),
        }
        (work / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        _verify(work, expected, progress)
        if dst.exists():
            shutil.rmtree(dst)
        work.rename(dst)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return dst


def dequantize_checkpoint(
    src,
    dst,
    dtype: torch.dtype = torch.bfloat16,
    backend: str = "reference",
    max_shard_gb: float = 2.0,
) -> Path:
    """Writes the plain checkpoint of q6bit checkpoint `src` to `dst`: every
    triple X as its weight in `dtype` (``dtype(fp16 weight)``, what serving
    the q6bit checkpoint in that dtype holds), other tensors as stored, and
    config.json without quantization_config. For comparing the two exactly."""
    src, dst = Path(src), Path(dst)
    config = read_config(src)
    config.pop("quantization_config", None)
    config["dtype"] = str(dtype).replace("torch.", "")
    dst.mkdir(parents=True)
    writer = ShardWriter(dst, int(max_shard_gb * 1e9))
    for name, tensor in iter_checkpoint_weights(src, backend=backend, progress=False):
        writer.add(name, tensor.to(dtype) if tensor.is_floating_point() else tensor)
    writer.finish()
    for item in src.iterdir():
        if (
            item.is_file()
            and not any(item.match(p) for p in _WEIGHT_PATTERNS)
            and item.name != "config.json"
        ):
            shutil.copy2(item, dst / item.name)
    (dst / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return dst


def _verify(folder: Path, expected: dict[str, str], progress: bool) -> None:
    """Reads the written files back through the reference dequantizer: every
    weight must equal, bit for bit, what the kernels produced in memory."""
    seen = set()
    for name, weight in iter_checkpoint_weights(folder, backend="reference", progress=progress):
        if name in expected:
            if tensor_sha256(weight) != expected[name]:
                raise RuntimeError(
                    f"verification failed: {name} read back from {folder} "
                    "differs from the weight that was quantized"
                )
            seen.add(name)
    if seen != set(expected):
        raise RuntimeError(f"verification failed: {sorted(set(expected) - seen)} not read back")

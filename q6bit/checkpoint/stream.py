"""Streaming a validated q6bit checkpoint: shard by shard, each triple
dequantized as soon as its three members have been read (triples may span
shards). Never yields a wrong weight: plan_checkpoint validates first.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator

import torch

from .. import layout as fmt
from ..hashing import ModelHashes
from ..ops import dequantize, dequantize_into
from ..recover import dequantize_triple
from .reader import CheckpointError, plan_checkpoint


class LoadStats(ModelHashes):
    """What iter_checkpoint_weights measured and hashed while streaming:
    read_seconds, dequant_seconds, tensors, weights, sampled_sha256(), full_sha256()
    (the latter only with full_hash=True)."""

    def __init__(self, full_hash: bool = False):
        super().__init__(full=full_hash)
        self.read_seconds = 0.0
        self.dequant_seconds = 0.0
        self.tensors = 0
        self.weights = 0

    def add(self, name: str, tensor: torch.Tensor) -> None:
        self.tensors += 1
        super().add(name, tensor)

    def add_packed(self, triple: fmt.Triple, backend: str) -> None:
        """Hashes a triple that stays packed as the fp16 weight X it stands
        for, as recover_from_quant would give it: the sample needs only the
        first groups; the full hash (if asked for) dequantizes the weight."""
        q, zp, sc = (triple.parts[p] for p in fmt.PARTS)
        if self.full:
            super().add(triple.name, dequantize_triple(triple, backend))
        else:
            g = fmt.group_size_of(q.shape)
            k = -(-8 // g)  # groups holding flat element 7
            first = [t.reshape(-1, t.shape[-1])[:k].unsqueeze(1) for t in (q, zp, sc)]
            self.add_sample(triple.name, dequantize(*first, backend=backend))
        self.tensors += 1


class _ReusedOutput:
    """Two fp16 buffers, used in turn and grown as needed, that the loader
    dequantizes every weight into, so that streaming a model touches fresh
    memory about once, not once a weight (on a 2-core VM a fresh fp16 buffer a weight cost 1-4 s of
    page faults for a 1.7 B model). Two, because a consumer's loop variable
    still holds the last weight while it asks for the next. A buffer is only
    reused when nothing else can reach its memory: no tensor or view of it
    (the storage's use count) and no Python reference to its storage
    (t.untyped_storage() adds none to the use count: the StorageImpl keeps
    its Python object, so that one is counted by refcount); otherwise a new
    one is made and the consumer keeps the old."""

    def __init__(self):
        self.buffers: list[torch.Tensor] = []
        self._use_count = getattr(torch._C, "_storage_Use_Count", None)
        # both counts of a buffer nobody else holds, measured, not assumed
        self._alone = self._counts(torch.empty(1, dtype=torch.float16)) if self._use_count else None

    def _counts(self, buffer: torch.Tensor) -> tuple[int, int]:
        storage = buffer.untyped_storage()
        return self._use_count(storage._cdata), sys.getrefcount(storage)

    def _free(self, buffer: torch.Tensor) -> bool:
        uses, refs = self._counts(buffer)
        return uses <= self._alone[0] and refs <= self._alone[1]

    def take(self, numel: int) -> torch.Tensor:
        if self._use_count is None:  # cannot tell: never reuse
            return torch.empty(numel, dtype=torch.float16)
        free = [b for b in self.buffers if self._free(b)]
        fits = [b for b in free if b.numel() >= numel]
        if fits:
            buffer = min(fits, key=torch.Tensor.numel)
        else:
            # grow a free buffer, or make a new one; keep two at most (the
            # consumer keeps any other alive for as long as it needs it)
            buffer = torch.empty(numel, dtype=torch.float16)
            keep = [b for b in self.buffers if b is not (free[0] if free else None)]
            self.buffers = (keep + [buffer])[-2:]
        return buffer[:numel]


def _dequantize_streamed(triple: fmt.Triple, backend: str, reuse: _ReusedOutput) -> torch.Tensor:
    qweight = triple.parts[fmt.QWEIGHT]
    if backend == "fast" and all(t.device.type == "cpu" for t in triple.parts.values()):
        out = reuse.take(torch.Size(fmt.dequantized_shape(qweight.shape)).numel())
        try:
            return dequantize_into(
                qweight, triple.parts[fmt.ZERO_POINT], triple.parts[fmt.SCALES], out
            )
        except (ValueError, RuntimeError) as e:
            raise type(e)(f"{triple.name}: {e}") from e
    return dequantize_triple(triple, backend)


def _check_scales(plan, base: str, scales: torch.Tensor) -> None:
    if not torch.isfinite(scales).all():
        where = plan.triples[base].parts[fmt.SCALES].file
        raise CheckpointError(f"{where}: tensor {base}.scales has non-finite values (inf/NaN)")


def iter_checkpoint_weights(
    path,
    backend: str = "fast",
    stats: LoadStats | None = None,
    progress: bool = True,
    packed: Callable[[str], str | None] | None = None,
    plan=None,
    keep: Callable[[str], bool] | None = None,
) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, tensor) for every weight of a q6bit checkpoint: plain tensors as
    stored, each triple X.* as (X, fp16 weight). Validates the whole
    checkpoint first (plan_checkpoint, unless a plan is given), then streams
    shard by shard.

    packed(X) may name a prefix P under which triple X stays packed: its
    members are then yielded as they are read, as (P.qweight, ...), and not
    dequantized (a vLLM quantization method dequantizes them per rank).
    keep(name) False: the tensor is neither read nor yielded (a pipeline
    stage skips the layers it does not hold)."""
    from safetensors import safe_open
    from tqdm import tqdm

    plan = plan if plan is not None else plan_checkpoint(path)
    stats = stats if stats is not None else LoadStats()
    reuse = _ReusedOutput()
    pending: dict[str, fmt.Triple] = {}
    names = {f: [n for n in plan.tensors[f] if keep is None or keep(n)] for f in plan.files}
    bar = tqdm(
        total=sum(
            torch.Size(fmt.dequantized_shape(t.parts[fmt.QWEIGHT].shape)).numel()
            for base, t in plan.triples.items()
            if keep is None or keep(f"{base}.{fmt.QWEIGHT}")
        ),
        unit="w",
        unit_scale=True,
        desc="q6bit read" if packed else "q6bit dequant",
        disable=not progress,
    )
    try:
        for file in (f for f in plan.files if names[f]):
            try:
                handle = safe_open(str(file), framework="pt")
            except Exception as e:  # safetensors raises its own error types
                raise CheckpointError(f"{file}: cannot open: {e}") from e
            with handle:
                for name in names[file]:
                    t_read = time.perf_counter()
                    try:
                        tensor = handle.get_tensor(name)
                    except Exception as e:
                        raise CheckpointError(f"{file}: cannot read tensor {name}: {e}") from e
                    stats.read_seconds += time.perf_counter() - t_read
                    split = fmt.split_name(name)
                    if split is None:
                        stats.add(name, tensor)
                        yield name, tensor
                        continue
                    base, part = split
                    if part == fmt.SCALES:
                        _check_scales(plan, base, tensor)
                    prefix = packed(base) if packed else None
                    triple = pending.setdefault(base, fmt.Triple(base))
                    triple.parts[part] = tensor
                    if prefix is not None:
                        if part == fmt.QWEIGHT:
                            bar.update(torch.Size(fmt.dequantized_shape(tensor.shape)).numel())
                        yield f"{prefix}.{part}", tensor
                        if triple.complete():
                            del pending[base]
                            stats.add_packed(triple, backend)
                        continue
                    if not triple.complete():
                        continue
                    del pending[base]
                    t0 = time.perf_counter()
                    weight = _dequantize_streamed(triple, backend, reuse)
                    stats.dequant_seconds += time.perf_counter() - t0
                    stats.weights += weight.numel()
                    bar.update(weight.numel())
                    stats.add(triple.name, weight)
                    yield triple.name, weight
                    del weight, triple  # let the next weight reuse the buffer
    finally:
        bar.close()

"""Many q6bit triples in few Triton launches (fp16 outputs): the list form
of q6bit/triton_dequant.py, whose tile functions it calls, so the rounding
and the unpacking exist once.

Why: a Triton launch costs ~30 us of host time, so one launch per tensor
(254 for Qwen3-8B) left the GPU waiting on the host.

Design: triples are bucketed by (group size, kernel, 16-byte alignment)
so that G and the alignment hint stay constexprs. A bucket is one launch
over an int64 table in device memory, one row of _FIELDS a tensor: its q /
zero-point / scale / output addresses, its group count, and the first
program of its tensor (a prefix sum). Program p finds its tensor by a
binary search of that prefix sum and runs the same tile as the
single-tensor kernel on it.

Pipelining: the host's per-tensor work (checks, the output's allocation,
its table row) is ~as long as the GPU's per-tensor work on a model's
smaller tensors, so a bucket is launched as soon as it holds a launch's
worth of weights: FIRST_FLUSH for the call's first launch (the GPU starts
at once), then twice the previous launch, up to FLUSH_WEIGHTS (fewer
launches). The host's work then hides behind the kernels.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from . import triton_dequant as td

FLUSH_WEIGHTS = 1 << 29  # the most weights a launch takes
FIRST_FLUSH = 1 << 24  # the first launch of a call: the GPU starts early
_FIELDS = 6  # a tensor's row: q, zp, s, out addresses, n_groups, first program
_FIRST = 5  # the row's field that holds its first program


@triton.jit
def _find_tensor(table, T, pid, STEPS: tl.constexpr):
    """Largest t < T with first_program[t] <= pid (first_program[0] == 0),
    by binary search: STEPS = bits of T."""
    t = 0
    step = 1 << (STEPS - 1)
    for _ in tl.static_range(STEPS):
        cand = t + step
        first = tl.load(table + cand * 6 + 5, mask=cand < T, other=pid + 1)
        t = tl.where(first <= pid, cand, t)
        step = step // 2
    return t


@triton.jit
def _pointer(row, field, ELEMENT: tl.constexpr, ALIGNED: tl.constexpr):
    """Address row[field] as a pointer. ALIGNED: every address of the
    bucket is a multiple of 16 (checked on the host), said to the compiler,
    which otherwise cannot vectorize loads and stores through a pointer it
    loaded."""
    p = tl.load(row + field).to(tl.pointer_type(ELEMENT), bitcast=True)
    if ALIGNED:
        p = tl.multiple_of(p, 16)
    return p


@triton.jit
def _dequant_list_kernel(
    table,
    T,
    G: tl.constexpr,
    GP: tl.constexpr,
    BLOCK_G: tl.constexpr,
    WORDS: tl.constexpr,
    STEPS: tl.constexpr,
    WIDE: tl.constexpr,
    ALIGNED: tl.constexpr,
):
    pid = tl.program_id(0).to(tl.int64)
    row = table + _find_tensor(table, T, pid, STEPS) * 6  # _FIELDS
    block = pid - tl.load(row + 5)  # _FIRST
    if not WIDE:  # every offset of this bucket fits in 31 bits
        block = block.to(tl.int32)
    n_groups = tl.load(row + 4)
    zp = _pointer(row, 1, tl.int8, ALIGNED)
    s = _pointer(row, 2, tl.float16, ALIGNED)
    out = _pointer(row, 3, tl.float16, ALIGNED)
    if WORDS:
        q = _pointer(row, 0, tl.int32, ALIGNED)
        td._tile16(q, zp, s, out, n_groups, block, G, GP // 16, BLOCK_G, tl.float16)
    else:
        q = _pointer(row, 0, tl.uint8, ALIGNED)
        td._tile(q, zp, s, out, n_groups, block, G, GP, BLOCK_G, tl.float16)


class _Bucket:
    """Triples of one group size and kernel, waiting for their launch."""

    __slots__ = ("group_size", "words", "aligned", "block_g", "table", "programs", "weights")

    def __init__(self, group_size: int, words: bool, aligned: bool, block_g: int):
        self.group_size, self.words, self.aligned = group_size, words, aligned
        self.block_g = block_g
        self.clear()

    def clear(self) -> None:
        self.table: list[int] = []  # _FIELDS ints a tensor
        self.programs = 0
        self.weights = 0

    def add(self, q: int, zp: int, s: int, out: int, n_groups: int) -> None:
        """One tensor, by its addresses and group count."""
        self.table += (q, zp, s, out, n_groups, self.programs)
        self.programs += -(-n_groups // self.block_g)
        self.weights += n_groups * self.group_size

    def launch(self, device) -> None:
        T = len(self.table) // _FIELDS
        if self.programs == 0:
            self.clear()
            return
        if device.type == "cuda":  # pinned + async: the host does not wait for the GPU
            table = torch.tensor(self.table, dtype=torch.int64, pin_memory=True)
            table = table.to(device, non_blocking=True)
        else:  # Triton's interpreter, on CPU tensors
            table = torch.tensor(self.table, dtype=torch.int64)
        gp = td._pow2_at_least(self.group_size)
        # The largest offset of the bucket: its largest tensor's outputs.
        largest = max(self.table[4::_FIELDS]) * self.group_size
        _dequant_list_kernel[(self.programs,)](
            table,
            T,
            G=self.group_size,
            GP=gp,
            BLOCK_G=self.block_g,
            WORDS=self.words,
            STEPS=max(1, T.bit_length()),
            WIDE=largest + gp > td._INT32_LIMIT,
            ALIGNED=self.aligned,
            num_warps=td.launch_config(gp)[2],
        )
        self.clear()


def dequantize_list(
    qweights, zero_points, scales, block_groups: int | None = None
) -> list[torch.Tensor]:
    """fp16 weights [..., n_groups*G] of many triples, all on one device.
    block_groups: as in triton_dequant.dequantize_into (interpreter tests).
    The host work per tensor is kept to a few Python operations: on a GPU
    it is what the kernels wait for (see the module docstring)."""
    where = "q6bit.dequantize_list"
    if not len(qweights) == len(zero_points) == len(scales):
        raise ValueError(
            f"{where}: got {len(qweights)} qweights, {len(zero_points)} "
            f"zero_points and {len(scales)} scales; they must pair up"
        )
    outputs, buckets = [], {}
    device = qweights[0].device if len(qweights) else None
    flush_at = min(FIRST_FLUSH, FLUSH_WEIGHTS)
    fp16 = torch.float16
    for i, (q, zp, s) in enumerate(zip(qweights, zero_points, scales)):
        try:
            group_size = td.check_inputs(q, zp, s)
            if q.device != device:
                raise ValueError(f"all tensors must be on one device, got {device} and {q.device}")
        except ValueError as e:
            raise ValueError(f"{where}[{i}]: {e}") from e
        shape = q.shape
        n_groups = zp.numel()
        out = q.new_empty((*shape[:-2], shape[-2] * group_size), dtype=fp16)  # q's device
        outputs.append(out)
        qp, zpp, sp, outp = q.data_ptr(), zp.data_ptr(), s.data_ptr(), out.data_ptr()
        key = (group_size, td.uses_words(group_size, qp), (qp | zpp | sp | outp) % 16 == 0)
        bucket = buckets.get(key)
        if bucket is None:
            block_g = block_groups or td.launch_config(group_size)[1]
            bucket = buckets[key] = _Bucket(*key, block_g)
        bucket.add(qp, zpp, sp, outp, n_groups)
        if bucket.weights >= flush_at:
            bucket.launch(device)
            flush_at = min(2 * flush_at, FLUSH_WEIGHTS)
    for bucket in buckets.values():
        bucket.launch(device)
    return outputs

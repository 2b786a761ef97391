"""Many q6bit triples in few Triton launches (fp16 outputs): the list form
of q6bit/triton_dequant.py, whose tile functions it calls, so the rounding
and the unpacking exist once.

Why: a Triton launch costs ~30 us of host time, so one launch per tensor
(254 for Qwen3-8B) left the GPU waiting on the host.

Design: triples are bucketed by (group size, kernel, 16-byte alignment)
so that G and the alignment hint stay constexprs. A bucket is one launch
over an int64 table in device memory,
rows = the tensors' q / zero-point / scale / output addresses, their group
counts, and the prefix sum of their programs. Program p finds its tensor
by a binary search of that prefix sum and runs the same tile as the
single-tensor kernel on it. A bucket is launched as soon as it holds
FLUSH_WEIGHTS weights, so the GPU starts on the first tensors while the host
still prepares the later ones (the host's per-tensor work is then hidden
behind the kernels instead of adding to them).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from . import triton_dequant as td

FLUSH_WEIGHTS = 1 << 29  # launch a bucket once it holds this many weights
_ROWS = 6  # q, zp, s, out addresses, n_groups, first program


@triton.jit
def _find_tensor(table, T, pid, STEPS: tl.constexpr):
    """Largest t < T with first_program[t] <= pid (first_program[0] == 0),
    by binary search: STEPS = bits of T."""
    t = 0
    step = 1 << (STEPS - 1)
    for _ in tl.static_range(STEPS):
        cand = t + step
        first = tl.load(table + 5 * T + cand, mask=cand < T, other=pid + 1)
        t = tl.where(first <= pid, cand, t)
        step = step // 2
    return t


@triton.jit
def _pointer(table, row, T, t, ELEMENT: tl.constexpr, ALIGNED: tl.constexpr):
    """Address table[row][t] as a pointer. ALIGNED: every address of the
    bucket is a multiple of 16 (checked on the host), said to the compiler,
    which otherwise cannot vectorize loads and stores through a pointer it
    loaded."""
    p = tl.load(table + row * T + t).to(tl.pointer_type(ELEMENT), bitcast=True)
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
    t = _find_tensor(table, T, pid, STEPS)
    block = pid - tl.load(table + 5 * T + t)
    if not WIDE:  # every offset of this bucket fits in 31 bits
        block = block.to(tl.int32)
    n_groups = tl.load(table + 4 * T + t)
    zp = _pointer(table, 1, T, t, tl.int8, ALIGNED)
    s = _pointer(table, 2, T, t, tl.float16, ALIGNED)
    out = _pointer(table, 3, T, t, tl.float16, ALIGNED)
    if WORDS:
        q = _pointer(table, 0, T, t, tl.int32, ALIGNED)
        td._tile16(q, zp, s, out, n_groups, block, G, GP // 16, BLOCK_G, tl.float16)
    else:
        q = _pointer(table, 0, T, t, tl.uint8, ALIGNED)
        td._tile(q, zp, s, out, n_groups, block, G, GP, BLOCK_G, tl.float16)


class _Bucket:
    """Triples of one group size and kernel, waiting for their launch."""

    def __init__(self, group_size: int, words: bool, aligned: bool, block_g: int):
        self.group_size, self.words, self.aligned = group_size, words, aligned
        self.block_g = block_g
        self.rows: list[list[int]] = [[] for _ in range(_ROWS)]
        self.programs = 0
        self.weights = 0
        self.largest = 0

    def add(self, qweight, zero_point, scales, out) -> None:
        n = zero_point.numel()
        for row, v in zip(
            self.rows,
            (
                qweight.data_ptr(),
                zero_point.data_ptr(),
                scales.data_ptr(),
                out.data_ptr(),
                n,
                self.programs,
            ),
        ):
            row.append(v)
        self.programs += triton.cdiv(n, self.block_g)
        self.weights += out.numel()
        self.largest = max(self.largest, qweight.numel(), out.numel())

    def launch(self, device) -> None:
        T = len(self.rows[0])
        if T == 0 or self.programs == 0:
            return
        flat = [v for row in self.rows for v in row]
        if device.type == "cuda":  # pinned + async: the host does not wait for the GPU
            table = torch.tensor(flat, dtype=torch.int64, pin_memory=True)
            table = table.to(device, non_blocking=True)
        else:  # Triton's interpreter, on CPU tensors
            table = torch.tensor(flat, dtype=torch.int64)
        gp = td._pow2_at_least(self.group_size)
        wide = self.largest + gp > td._INT32_LIMIT
        _dequant_list_kernel[(self.programs,)](
            table,
            T,
            G=self.group_size,
            GP=gp,
            BLOCK_G=self.block_g,
            WORDS=self.words,
            STEPS=max(1, T.bit_length()),
            WIDE=wide,
            ALIGNED=self.aligned,
            num_warps=td.launch_config(gp)[2],
        )
        self.__init__(self.group_size, self.words, self.aligned, self.block_g)


def dequantize_list(
    qweights, zero_points, scales, block_groups: int | None = None
) -> list[torch.Tensor]:
    """fp16 weights [..., n_groups*G] of many triples, all on one device.
    block_groups: as in triton_dequant.dequantize_into (interpreter tests)."""
    op = "q6bit.dequantize_list"
    if not len(qweights) == len(zero_points) == len(scales):
        raise ValueError(
            f"{op}: got {len(qweights)} qweights, {len(zero_points)} "
            f"zero_points and {len(scales)} scales; they must pair up"
        )
    outputs, buckets = [], {}
    device = qweights[0].device if len(qweights) else None
    for i, (q, zp, s) in enumerate(zip(qweights, zero_points, scales)):
        try:
            group_size = td.check_inputs(q, zp, s)
            if q.device != device:
                raise ValueError(f"all tensors must be on one device, got {device} and {q.device}")
        except ValueError as e:
            raise ValueError(f"{op}[{i}]: {e}") from e
        out = torch.empty(
            (*q.shape[:-2], q.shape[-2] * group_size), dtype=torch.float16, device=device
        )
        outputs.append(out)
        words = td.uses_words(group_size, q)
        aligned = (q.data_ptr() | zp.data_ptr() | s.data_ptr() | out.data_ptr()) % 16 == 0
        key = (group_size, words, aligned)
        bucket = buckets.get(key)
        if bucket is None:
            block_g = block_groups or td.launch_config(group_size)[1]
            bucket = buckets[key] = _Bucket(group_size, words, aligned, block_g)
        bucket.add(q, zp, s, out)
        if bucket.weights >= FLUSH_WEIGHTS:
            bucket.launch(device)
    for bucket in buckets.values():
        bucket.launch(device)
    return outputs

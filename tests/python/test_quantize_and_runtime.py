"""quantize() as the inverse of dequantization, and the process runtime."""

import subprocess
import sys

import torch

import q6bit
from q6bit import reference


def test_quantize_round_trip_error_is_within_half_a_step():
    w = torch.randn(32, 512, generator=torch.Generator().manual_seed(3))
    q, z, s = q6bit.quantize(w, group_size=64)
    assert (q.dtype, z.dtype, s.dtype) == (torch.uint8, torch.int8, torch.float16)
    assert q.shape == (32, 8, 48) and z.shape == s.shape == (32, 8, 1)
    back = q6bit.dequantize(q, z, s).float().reshape(32, 8, 64)
    err = (back - w.reshape(32, 8, 64)).abs()
    assert (err <= s.float() * 0.5 + 1e-3).all()


def test_quantize_is_deterministic_and_keeps_zeros():
    w = torch.randn(4, 256, generator=torch.Generator().manual_seed(4))
    w[1] = 0
    a, b = q6bit.quantize(w), q6bit.quantize(w.clone())
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert (q6bit.dequantize(*a)[1] == 0).all()


def test_pack_is_the_inverse_of_unpack():
    codes = torch.randint(0, 64, (5, 3, 128), dtype=torch.uint8)
    packed = q6bit.pack_6bit(codes)
    assert torch.equal(reference.unsqueeze_from_6bit(packed), codes)
    assert torch.equal(q6bit.unpack(packed), codes)


def test_one_openmp_runtime_in_the_process():
    """torch's own libgomp is the only OpenMP runtime once q6bit is loaded
    and has run in parallel. Checked in a fresh interpreter: this pytest
    process may hold other libraries' runtimes (sentencepiece ships one)."""
    code = """
import torch, q6bit
q6bit.kernel_target()
torch.set_num_threads(2)
assert q6bit.ops.parallel_threads() == 2
from pathlib import Path
libs = {l.split()[-1] for l in Path('/proc/self/maps').read_text().splitlines()
        if any(k in l for k in ('libgomp', 'libiomp', 'libomp'))}
print(len(libs), sorted(libs))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("1 "), out.stdout

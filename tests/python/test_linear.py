"""q6bit.ops.linear (torch.ops.q6bit.linear): y = x @ W.T + bias with
W = q6bit.dequantize(..., dtype=x.dtype), on both paths (packed GEMV and
dequantized tiles through torch's GEMM), every kernel target, dtype, x rank,
with and without bias; exact weights; empty inputs; error messages.

Error bound. The op computes s = sum_k x_k w_k + b in fp32 (x and w are
exact in fp32), K products and K additions in some order: by the standard
inner-product bound (Higham, Accuracy and Stability, 3.1), for any order,
    |s - ref| <= gamma_{K+1} * (sum_k |x_k w_k| + |b|),
    gamma_n = n u / (1 - n u),  u = 2^-24 (fp32 unit roundoff),
ref being the exact (float64) x @ W.T + b. Then s is rounded once to x's
dtype: |y - s| <= u_out |s|, u_out = half an ulp at 1 (2^-8 for bf16,
2^-11 for fp16, 2^-24 for fp32), and |s| <= |ref| + |s - ref|, so
    |y - ref| <= gamma_{K+1} (1 + u_out) * (sum |x w| + |b|) + u_out |ref|.
"""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import q6bit
import q6bit.ops as ops

DTYPES = [torch.bfloat16, torch.float16, torch.float32]
UNIT_ROUNDOFF = {torch.bfloat16: 2.0**-8, torch.float16: 2.0**-11, torch.float32: 2.0**-24}


def sane_triple(n, n_groups, group_size, seed=0):
    """Random packed bytes with zero points and scales that keep every sum
    far from overflow and underflow."""
    gen = torch.Generator().manual_seed(seed)
    q = torch.randint(0, 256, (n, n_groups, group_size // 4 * 3), dtype=torch.uint8, generator=gen)
    z = torch.randint(-20, 60, (n, n_groups, 1), dtype=torch.int8, generator=gen)
    s = ((torch.rand(n, n_groups, 1, generator=gen) - 0.3) * 0.02).half()
    return q, z, s


def weight(q, z, s, dtype):
    return q6bit.dequantize(q, z, s, dtype=dtype).view(q.shape[0], -1)


def error_over_bound(y, x, w, bias, subnormal_slack=False):
    """max |y - ref| / bound (see the module docstring); <= 1 passes.
    subnormal_slack: inputs so small that sums are subnormal, where an fp32
    rounding loses up to 2^-150 absolutely (gradual underflow) and the final
    rounding half an ulp of the output type's subnormals; the bound gains
    those (K + 1) * 2^-150 + 2^-134 (a kernel that flushed subnormals to
    zero loses far more)."""
    xd, wd = x.double().reshape(-1, x.shape[-1]), w.double()
    ref = xd @ wd.T
    magnitude = xd.abs() @ wd.abs().T
    if bias is not None:
        ref = ref + bias.double()
        magnitude = magnitude + bias.double().abs()
    k = x.shape[-1] + 1
    u = 2.0**-24
    u_out = UNIT_ROUNDOFF[x.dtype]
    bound = k * u / (1 - k * u) * (1 + u_out) * magnitude + u_out * ref.abs()
    if subnormal_slack:
        bound = bound + k * 2.0**-150 + 2.0**-134
    err = (y.double().reshape(ref.shape) - ref).abs()
    return (err / bound.clamp_min(1e-300)).max().item() if err.numel() else 0.0


def _linear_targets():
    """Every runnable kernel target with every CPU extension allowed, plus
    on AVX3_DL each combination of the usable ones forbidden (portable
    tables, fp32 FMAs instead of vdpbf16ps), so that every code path runs;
    not those that forbid an extension another allowed one overrides (they
    run the same code as the one without that)."""
    variants = [(t, ()) for t in q6bit.kernel_targets()]
    if "AVX3_DL" not in q6bit.kernel_targets():
        return variants
    q6bit.force_kernel_target("AVX3_DL")
    usable = ops.cpu_extensions_in_use()
    q6bit.force_kernel_target("")
    for mask in range(1, 1 << len(usable)):
        forbidden = tuple(e for i, e in enumerate(usable) if mask >> i & 1)
        overrider = ops.CPU_EXTENSION_OVERRIDDEN_BY.get
        if not any(overrider(e) in usable and overrider(e) not in forbidden for e in forbidden):
            variants.append(("AVX3_DL", forbidden))
    return variants


@pytest.fixture(params=_linear_targets(), ids=lambda p: "-no-".join((p[0],) + p[1]))
def linear_target(request):
    target, forbidden = request.param
    q6bit.force_kernel_target(target)
    for name in forbidden:
        ops.allow_cpu_extension(name, False)
    yield target
    for name in ops.CPU_EXTENSIONS:
        ops.allow_cpu_extension(name, True)
    q6bit.force_kernel_target("")


def test_linear_uses_tables_on_vbmi_target_only(linear_target):
    # The table path is AVX3_DL's (AVX-512 VBMI): the packed-mode warning
    # (q6bit/vllm_plugin/loader.py) reads this on every other target.
    assert ops.linear_uses_tables() == (linear_target == "AVX3_DL")


@pytest.fixture
def path(request):
    """Forces q6bit.linear's path through its batch threshold."""
    before = ops.linear_config()
    if request.param == "gemv":
        ops.set_linear_config(gemv_max_m=1 << 30)
    else:  # small tiles, so that several (and a partial last one) are used
        ops.set_linear_config(gemv_max_m=0, tile_bytes=4096)
    yield request.param
    ops.set_linear_config(*before)


def gemv_linear(x, q, z, s):
    """ops.linear with the GEMV forced whatever the batch."""
    before = ops.linear_config()
    ops.set_linear_config(gemv_max_m=1 << 30)
    try:
        return ops.linear(x, q, z, s)
    finally:
        ops.set_linear_config(*before)


X_SHAPES = {"1d": (), "2d": (5,), "3d": (2, 3)}


@pytest.mark.parametrize("path", ["gemv", "tiled"], indirect=True)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("x_shape", X_SHAPES.values(), ids=X_SHAPES.keys())
@pytest.mark.parametrize("with_bias", [False, True], ids=["no_bias", "bias"])
@pytest.mark.parametrize("group_size, n_groups", [(128, 3), (12, 5)])
def test_within_bound(linear_target, path, dtype, x_shape, with_bias, group_size, n_groups):
    n = 37
    q, z, s = sane_triple(n, n_groups, group_size, seed=group_size)
    w = weight(q, z, s, dtype)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(*x_shape, n_groups * group_size, generator=gen).to(dtype)
    bias = torch.randn(n, generator=gen).to(dtype) if with_bias else None
    y = ops.linear(x, q, z, s, bias)
    assert y.shape == (*x_shape, n) and y.dtype == dtype
    assert error_over_bound(y, x, w, bias) <= 1.0


def test_default_threshold_by_dtype_and_cpu():
    """The GEMV threshold is chosen per call by default: 64 rows of bf16 x
    where the kernels use AMX tiles, 24 where they use vdpbf16ps on an AMD
    CPU (from one row of x), 8 otherwise; a set value applies to every dtype
    until -1 restores the default."""
    before = ops.linear_config()
    try:
        ops.set_linear_config(gemv_max_m=-1)
        assert ops.linear_config()[0] == -1
        in_use = ops.cpu_extensions_in_use()
        amd = "AuthenticAMD" in Path("/proc/cpuinfo").read_text()
        dot_from_one_row = "bf16-dot" in in_use and amd
        bf16 = 64 if "amx" in in_use else 24 if dot_from_one_row else 8
        assert ops.gemv_max_m(torch.bfloat16) == bf16
        if "amx" in in_use:
            ops.allow_cpu_extension("amx", False)  # vdpbf16ps or FMAs then
            try:
                assert ops.gemv_max_m(torch.bfloat16) == (24 if dot_from_one_row else 8)
            finally:
                ops.allow_cpu_extension("amx", True)
        if dot_from_one_row and "amx" not in in_use:
            ops.allow_cpu_extension("bf16-dot", False)  # fp32 FMAs then
            try:
                assert ops.gemv_max_m(torch.bfloat16) == 8
            finally:
                ops.allow_cpu_extension("bf16-dot", True)
        assert ops.gemv_max_m(torch.float16) == ops.gemv_max_m(torch.float32) == 8
        ops.set_linear_config(gemv_max_m=3)
        assert ops.gemv_max_m(torch.bfloat16) == ops.gemv_max_m(torch.float32) == 3
        ops.set_linear_config(tile_bytes=1 << 20)  # None keeps gemv_max_m
        assert ops.linear_config() == (3, 1 << 20)
    finally:
        ops.set_linear_config(*before)
    assert ops.linear_config() == before


@pytest.mark.parametrize(
    "kwargs, what", [({"gemv_max_m": -2}, "gemv_max_m"), ({"tile_bytes": 0}, "tile_bytes")]
)
def test_bad_input_linear_config_raises_and_keeps(kwargs, what):
    before = ops.linear_config()
    with pytest.raises(ValueError, match=what):
        ops.set_linear_config(**kwargs)
    assert ops.linear_config() == before


@pytest.mark.parametrize("m", list(range(1, 18)))
def test_every_batch_size_by_default_threshold(m, threads):
    """Default threshold: both paths across M = 1..17, 1 and 2 threads."""
    q, z, s = sane_triple(67, 4, 128, seed=m)
    x = torch.randn(m, 512, generator=torch.Generator().manual_seed(m)).bfloat16()
    y = ops.linear(x, q, z, s)
    assert error_over_bound(y, x, weight(q, z, s, torch.bfloat16), None) <= 1.0


# Scales whose weights are fp16 subnormals, zeros of both signs, values that
# overflow to inf, inf and NaN: the GEMV's per-group weight tables (AVX3_DL)
# and its in-register decode must give these exactly as dequantize does.
HOSTILE_SCALES = [0x0001, 0x0400, 0x7BFF, 0x7C00, 0x7E00, 0x8000, 0x0000, 0x3C00, 0xFBFF, 0x83FF]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("group_size", [64, 128])
def test_gemv_hostile_scales_match_dequantize(linear_target, dtype, group_size):
    """One group per weight row, every code, x = rows of the identity: each
    output is one weight (plus products with 0), so where the float64
    reference is not NaN the op must give that weight exactly, and NaN
    exactly where it is NaN (0 * inf elsewhere in the row)."""
    n_groups = 1
    n = len(HOSTILE_SCALES) * 4
    gen = torch.Generator().manual_seed(group_size)
    q = torch.randint(0, 256, (n, n_groups, group_size // 4 * 3), dtype=torch.uint8, generator=gen)
    z = torch.tensor([-128, 0, 31, 127] * len(HOSTILE_SCALES), dtype=torch.int8).view(n, 1, 1)
    bits = torch.tensor([b for b in HOSTILE_SCALES for _ in range(4)], dtype=torch.int32)
    s = bits.to(torch.int16).view(torch.float16).view(n, 1, 1)
    w = weight(q, z, s, dtype)
    x = torch.eye(group_size, dtype=dtype)[:8]
    y = gemv_linear(x, q, z, s)
    ref = x.double() @ w.double().T
    assert torch.equal(y.isnan(), ref.isnan())
    keep = ~ref.isnan()
    assert torch.equal(y.double()[keep], ref[keep])


@pytest.mark.parametrize("m", [1, 3, 4, 8])  # AMX from 3 rows, vdpbf16ps from 4 (1 on AMD)
@pytest.mark.parametrize("exponent", [-81, -124, -130])
def test_gemv_tiny_bf16_x_within_bound(linear_target, m, exponent):
    """bf16 x so small that products are subnormal, or x itself is: the
    vdpbf16ps path (which flushes subnormals) must not take it, and no tiny
    product may be lost."""
    q, z, s = sane_triple(19, 4, 128, seed=-exponent)
    w = weight(q, z, s, torch.bfloat16)
    gen = torch.Generator().manual_seed(m)
    x = (torch.randn(m, 512, generator=gen, dtype=torch.float64) * 2.0**exponent).bfloat16()
    assert x.abs().max() > 0
    y = gemv_linear(x, q, z, s)
    assert error_over_bound(y, x, w, None, subnormal_slack=True) <= 1.0


@pytest.mark.parametrize("path", ["gemv", "tiled"], indirect=True)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_uses_exactly_dequantize_weights(path, dtype):
    """x = rows of the identity: each output is one weight times 1, no sum
    to round, so y must be W's columns bit for bit (both paths)."""
    q, z, s = sane_triple(29, 2, 128, seed=5)
    w = weight(q, z, s, dtype)
    cols = torch.tensor([0, 1, 77, 128, 255, 3, 200, 9, 100, 31, 64])
    x = torch.eye(256, dtype=dtype)[cols]
    assert torch.equal(ops.linear(x, q, z, s), w.T[cols])


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_tiled_path_matches_dense_linear(dtype):
    """The tiled path is torch's GEMM on dequantize's weights: it agrees with
    F.linear(x, W) on the dense weights within the bound, and the largest
    difference is a few ulps of the output at most."""
    before = ops.linear_config()
    ops.set_linear_config(gemv_max_m=0, tile_bytes=64 * 1024)
    try:
        q, z, s = sane_triple(300, 8, 128, seed=7)
        w = weight(q, z, s, dtype)
        x = torch.randn(40, 1024, generator=torch.Generator().manual_seed(1)).to(dtype)
        bias = torch.randn(300).to(dtype)
        y, dense = ops.linear(x, q, z, s, bias), F.linear(x, w, bias)
    finally:
        ops.set_linear_config(*before)
    assert error_over_bound(y, x, w, bias) <= 1.0
    assert error_over_bound(dense, x, w, bias) <= 1.0
    torch.testing.assert_close(y, dense)


@pytest.mark.parametrize("path", ["gemv", "tiled"], indirect=True)
def test_empty_inputs(path):
    q, z, s = sane_triple(6, 2, 4)
    empty_m = ops.linear(torch.zeros(0, 8), q, z, s)
    assert empty_m.shape == (0, 6)
    q0, z0, s0 = (t[:0] for t in (q, z, s))
    empty_n = ops.linear(torch.ones(3, 8), q0, z0, s0)
    assert empty_n.shape == (3, 0)
    qk, zk, sk = (t[:, :0] for t in (q, z, s))  # K = 0: the sum is empty
    bias = torch.arange(6.0)
    assert torch.equal(ops.linear(torch.ones(2, 0), qk, zk, sk, bias), bias.expand(2, 6))


def bad(mutate):
    q, z, s = sane_triple(6, 2, 4)
    args = {"x": torch.ones(2, 8), "qweight": q, "zero_point": z, "scales": s, "bias": None}
    mutate(args)
    return args


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda a: a.update(x=a["x"].double()), "x must be torch.float16, torch.bfloat16 or"),
        (lambda a: a.update(x=torch.ones(2, 9)), "x's last dim (9) must be the weight's in_feat"),
        (lambda a: a.update(x=torch.tensor(1.0)), "x must have shape [..., K]"),
        (lambda a: a.update(qweight=a["qweight"][0]), "qweight must have shape [N, n_groups"),
        (lambda a: a.update(zero_point=a["zero_point"][:3]), "zero_point must have shape"),
        (lambda a: a.update(scales=a["scales"].float()), "scales must be Half"),
        (lambda a: a.update(bias=torch.ones(6, dtype=torch.half)), "bias must have x's dtype"),
        (lambda a: a.update(bias=torch.ones(5)), "bias must have shape [6]"),
    ],
)
def test_bad_input_names_op_and_argument(mutate, message):
    args = bad(mutate)
    with pytest.raises(ValueError) as info:
        torch.ops.q6bit.linear(*args.values())
    assert str(info.value).startswith("q6bit.linear: ")
    assert message in str(info.value)


def test_meta_tensors_give_shapes():
    q, z, s = (t.to("meta") for t in sane_triple(6, 2, 4))
    y = torch.ops.q6bit.linear(torch.ones(2, 3, 8, device="meta"), q, z, s)
    assert y.shape == (2, 3, 6) and y.device.type == "meta"

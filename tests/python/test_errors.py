"""Bad inputs raise ValueError / RuntimeError with a message; nothing crashes."""

import pytest
import torch

import q6bit


def triple(groups=2, packed=96):
    return (
        torch.zeros(groups, packed, dtype=torch.uint8),
        torch.zeros(groups, 1, dtype=torch.int8),
        torch.ones(groups, 1, dtype=torch.float16),
    )


@pytest.mark.parametrize("backend", ["fast"])
@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda q, z, s: (q.to(torch.int8), z, s), "qweight must be uint8"),
        (lambda q, z, s: (q, z.to(torch.uint8), s), "zero_point must be Char"),
        (lambda q, z, s: (q, z, s.float()), "scales must be Half"),
        (lambda q, z, s: (q[:, :95].contiguous(), z, s), "multiple of 3"),
        (lambda q, z, s: (q.flatten(), z, s), "shape [..., n_groups, 3*G/4]"),
        (lambda q, z, s: (q, z[:1], s), "zero_point must have shape [2, 1]"),
        (lambda q, z, s: (q, z, s.reshape(1, 2)), "scales must have shape [2, 1]"),
        (lambda q, z, s: (torch.zeros(96, 2, dtype=torch.uint8).t(), z, s), "contiguous"),
    ],
)
def test_bad_input_is_a_clear_error(backend, mutate, message):
    q, z, s = mutate(*triple())
    with pytest.raises((ValueError, RuntimeError)) as info:
        q6bit.dequantize(q, z, s, backend=backend)
    assert message in str(info.value)


def test_mixed_devices_are_an_error_not_a_crash():
    q, z, s = triple()
    with pytest.raises(RuntimeError):
        torch.ops.q6bit.dequantize(q, z, s.to("meta"))


def test_unknown_backend():
    with pytest.raises(ValueError, match="backend must be one of"):
        q6bit.dequantize(*triple(), backend="cuda-magic")


def test_unknown_kernel_target():
    with pytest.raises(ValueError, match="not runnable here"):
        q6bit.force_kernel_target("AVX9000")
    assert q6bit.kernel_target() == q6bit.kernel_targets()[0]


def test_errors_name_the_op():
    q, z, s = triple()
    with pytest.raises(ValueError, match=r"^q6bit\.dequantize: zero_point must be"):
        torch.ops.q6bit.dequantize(q, z.to(torch.uint8), s)
    with pytest.raises(ValueError, match=r"^q6bit\.unpack: qweight must be uint8"):
        torch.ops.q6bit.unpack(q.to(torch.int8))
    with pytest.raises(ValueError, match=r"^q6bit\.dequantize_list\[1\]: scales must be"):
        torch.ops.q6bit.dequantize_list([q, q], [z, z], [s, s.float()])
    with pytest.raises(RuntimeError, match=r"q6bit\.dequantize: scales is on meta"):
        torch.ops.q6bit.dequantize(q, z, s.to("meta"))


@pytest.mark.parametrize("dtype", [torch.int32, torch.float64, torch.uint8])
def test_unsupported_output_dtype(dtype):
    q, z, s = triple()
    with pytest.raises(
        ValueError,
        match=r"q6bit\.dequantize: dtype must be torch.float16, "
        r"torch.bfloat16 or torch.float32",
    ):
        torch.ops.q6bit.dequantize(q, z, s, dtype=dtype)
    with pytest.raises(ValueError, match=r"q6bit\.dequantize\.out: out must be torch.float16"):
        torch.ops.q6bit.dequantize.out(q, z, s, out=torch.empty(256, dtype=dtype))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_out_of_the_wrong_size_or_layout(dtype):
    q, z, s = triple()
    with pytest.raises(
        ValueError,
        match=r"q6bit\.dequantize\.out: out must be a contiguous "
        r"tensor of 256 elements, got 255",
    ):
        torch.ops.q6bit.dequantize.out(q, z, s, out=torch.empty(255, dtype=dtype))
    with pytest.raises(ValueError, match="not contiguous"):
        torch.ops.q6bit.dequantize.out(q, z, s, out=torch.empty(16, 32, dtype=dtype).t())


def test_out_overlapping_an_input_is_an_error():
    """Writing the weights over an input would read clobbered bytes."""
    q, z, s = triple(groups=2, packed=6)  # G = 8: 16 weights
    # out over the qweight's bytes
    raw = torch.zeros(64, dtype=torch.uint8)
    q_in_raw = raw[:12].view(2, 6)
    with pytest.raises(
        ValueError,
        match=r"q6bit\.dequantize\.out: out overlaps the memory "
        r"of qweight",
    ):
        torch.ops.q6bit.dequantize.out(q_in_raw, z, s, out=raw[:32].view(torch.float16))
    # out over the scales (partly)
    halves = torch.ones(40, dtype=torch.float16)
    with pytest.raises(ValueError, match="out overlaps the memory of scales"):
        torch.ops.q6bit.dequantize.out(q, z, halves[15:17].view(2, 1), out=halves[:16])
    # out over the zero points
    zbytes = torch.zeros(64, dtype=torch.int8)
    with pytest.raises(ValueError, match="out overlaps the memory of zero_point"):
        torch.ops.q6bit.dequantize.out(
            q, zbytes[:2].view(2, 1), s, out=zbytes.view(torch.float32)[:16]
        )
    # the same call with separate memory works
    torch.ops.q6bit.dequantize.out(q, z, s, out=torch.empty(16, dtype=torch.float32))


def test_output_size_overflow_is_a_clear_error():
    """[0, 2^61, 3] is a valid empty tensor whose output dim 2^61 * 4
    overflows int64: a clear message, not torch's SymInt one."""
    q = torch.empty(0, 2**61, 3, dtype=torch.uint8)
    z = torch.empty(0, 2**61, 1, dtype=torch.int8)
    s = torch.empty(0, 2**61, 1, dtype=torch.float16)
    for call in (
        lambda: torch.ops.q6bit.dequantize(q, z, s),
        lambda: torch.ops.q6bit.dequantize_list([q], [z], [s]),
        lambda: torch.ops.q6bit.dequantize.out(q, z, s, out=torch.empty(0)),
    ):
        with pytest.raises(ValueError, match="output too large to represent"):
            call()
    meta = [t.to("meta") for t in (q, z, s)]
    big = torch.empty(2**61, 3, dtype=torch.uint8, device="meta")
    with pytest.raises(RuntimeError, match="output too large to represent"):
        torch.ops.q6bit.dequantize(
            big,
            torch.empty(2**61, 1, dtype=torch.int8, device="meta"),
            torch.empty(2**61, 1, dtype=torch.float16, device="meta"),
        )
    with pytest.raises(RuntimeError, match="output too large to represent"):
        torch.ops.q6bit.dequantize(*meta)

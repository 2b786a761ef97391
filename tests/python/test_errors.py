"""Bad inputs raise ValueError / RuntimeError with a message; nothing crashes."""
import pytest
import torch

import q6bit


def triple(groups=2, packed=96):
    return (torch.zeros(groups, packed, dtype=torch.uint8),
            torch.zeros(groups, 1, dtype=torch.int8),
            torch.ones(groups, 1, dtype=torch.float16))


@pytest.mark.parametrize("backend", ["fast"])
@pytest.mark.parametrize("mutate, message", [
    (lambda q, z, s: (q.to(torch.int8), z, s), "qweight must be uint8"),
    (lambda q, z, s: (q, z.to(torch.uint8), s), "zero_point must be Char"),
    (lambda q, z, s: (q, z, s.float()), "scales must be Half"),
    (lambda q, z, s: (q[:, :95].contiguous(), z, s), "multiple of 3"),
    (lambda q, z, s: (q.flatten(), z, s), "shape [..., n_groups, 3*G/4]"),
    (lambda q, z, s: (q, z[:1], s), "zero_point must have shape [2, 1]"),
    (lambda q, z, s: (q, z, s.reshape(1, 2)), "scales must have shape [2, 1]"),
    (lambda q, z, s: (torch.zeros(96, 2, dtype=torch.uint8).t(), z, s), "contiguous"),
])
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

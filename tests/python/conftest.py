import pytest
import torch

import q6bit

BITS = {2: torch.int16, 4: torch.int32}


def assert_same_bits(actual: torch.Tensor, expected: torch.Tensor, what: str = ""):
    """Exactness is a bit pattern: compare int16 (fp16, bf16) or int32 (fp32)
    views, report differing count."""
    assert actual.dtype == expected.dtype, what
    assert actual.shape == expected.shape, what
    bits = BITS[actual.element_size()]
    a, e = actual.view(bits), expected.view(bits)
    differing = (a != e).sum().item()
    assert differing == 0, f"{what}: {differing} of {a.numel()} weights differ in their bits"


def random_triple(outer, n_groups, group_size, gen, scale_bits=None):
    """Random packed bytes, zero points and finite fp16 scales (any exponent)."""
    qweight = torch.randint(
        0, 256, (*outer, n_groups, group_size // 4 * 3), dtype=torch.uint8, generator=gen
    )
    zero_point = torch.randint(-128, 128, (*outer, n_groups, 1), dtype=torch.int8, generator=gen)
    if scale_bits is None:
        bits = torch.randint(0, 1 << 16, (*outer, n_groups, 1), generator=gen)
        finite = (bits >> 10) & 31 != 31
        bits = torch.where(finite, bits, bits & 0x83FF)  # drop inf/NaN exponents
        scale_bits = bits.to(torch.int16)
    scales = scale_bits.view(torch.float16)
    return qweight, zero_point, scales


@pytest.fixture(params=[1, 2], ids=lambda n: f"threads{n}")
def threads(request):
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


@pytest.fixture(params=q6bit.kernel_targets())
def kernel_target(request):
    q6bit.force_kernel_target(request.param)
    yield request.param
    q6bit.force_kernel_target("")

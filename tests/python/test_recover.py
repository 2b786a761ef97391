"""recover_from_quant on a model-like list: same names, same sampled and
full-content hashes as the reference; pass-through and error behaviour."""

import pytest
import torch

import q6bit
from q6bit import reference

from conftest import assert_same_bits


def model_like_list(
    layers=2, hidden=256, inter=512, vocab=1000, heads=4, kv_heads=2, head_dim=64, seed=0
):
    """A Qwen3-shaped checkpoint list: every linear weight, embed_tokens and
    lm_head quantized; norms (including q_norm/k_norm) plain."""
    gen = torch.Generator().manual_seed(seed)
    weights = {"model.embed_tokens.weight": (vocab, hidden), "lm_head.weight": (vocab, hidden)}
    for i in range(layers):
        p = f"model.layers.{i}"
        weights.update(
            {
                f"{p}.self_attn.q_proj.weight": (heads * head_dim, hidden),
                f"{p}.self_attn.k_proj.weight": (kv_heads * head_dim, hidden),
                f"{p}.self_attn.v_proj.weight": (kv_heads * head_dim, hidden),
                f"{p}.self_attn.o_proj.weight": (hidden, heads * head_dim),
                f"{p}.mlp.gate_proj.weight": (inter, hidden),
                f"{p}.mlp.up_proj.weight": (inter, hidden),
                f"{p}.mlp.down_proj.weight": (hidden, inter),
            }
        )
    named = []
    for name, shape in weights.items():
        w = torch.randn(shape, generator=gen) * 0.05
        qweight, zero_point, scales = q6bit.quantize(w)
        named += [
            (name + ".qweight", qweight),
            (name + ".zero_point", zero_point),
            (name + ".scales", scales),
        ]
    norms = ["model.norm.weight"] + [
        f"model.layers.{i}.{n}.weight"
        for i in range(layers)
        for n in (
            "input_layernorm",
            "post_attention_layernorm",
            "self_attn.q_norm",
            "self_attn.k_norm",
        )
    ]
    for name in norms:
        named.append((name, torch.rand(hidden, generator=gen).to(torch.bfloat16)))
    return named


def test_same_names_and_hashes_as_reference(threads):
    named = model_like_list()
    ours = q6bit.recover_from_quant(named)
    ref = reference.recover_from_quant(named)
    assert sorted(n for n, _ in ours) == sorted(n for n, _ in ref)
    assert q6bit.sampled_sha256(ours) == q6bit.sampled_sha256(ref)
    assert q6bit.full_sha256(ours) == q6bit.full_sha256(ref)
    by_name = dict(ref)
    for name, tensor in ours:
        assert_same_bits(tensor, by_name[name], name)


def test_reference_backend_gives_the_same_list():
    named = model_like_list(layers=1)
    a = q6bit.recover_from_quant(named, backend="reference")
    b = q6bit.recover_from_quant(named)
    assert q6bit.full_sha256(a) == q6bit.full_sha256(b)


def test_full_hash_sees_what_the_sampled_hash_misses():
    named = model_like_list(layers=1)
    ours = dict(q6bit.recover_from_quant(named))
    changed = dict(ours)
    w = changed["lm_head.weight"].clone()
    w.view(-1)[100] += 1  # element 7 untouched
    changed["lm_head.weight"] = w
    assert q6bit.sampled_sha256(ours.items()) == q6bit.sampled_sha256(changed.items())
    assert q6bit.full_sha256(ours.items()) != q6bit.full_sha256(changed.items())


def test_passthrough_tensors_are_returned_as_they_are():
    named = model_like_list(layers=1)
    out = dict(q6bit.recover_from_quant(named))
    for name, tensor in named:
        if "norm" in name:
            assert out[name] is tensor


def test_incomplete_triple_is_a_clear_error():
    named = [
        (n, t)
        for n, t in model_like_list(layers=1)
        if n != "model.layers.0.mlp.up_proj.weight.scales"
    ]
    with pytest.raises(
        ValueError,
        match=r"model\.layers\.0\.mlp\.up_proj\.weight: "
        r"missing model\.layers\.0\.mlp\.up_proj\.weight\.scales",
    ):
        q6bit.recover_from_quant(named)


def test_bad_member_error_names_the_weight():
    named = model_like_list(layers=1)
    named = [(n, t.to(torch.int8) if n.endswith("o_proj.weight.qweight") else t) for n, t in named]
    with pytest.raises(
        ValueError, match=r"o_proj\.weight: q6bit\.dequantize: qweight must be uint8"
    ):
        q6bit.recover_from_quant(named)


@pytest.mark.parametrize(
    "bad, message",
    [
        (None, "expects a list of \\(name, tensor\\) pairs, got NoneType"),
        (3, "got int"),
        ("x.qweight", "got str"),
        ({"x.qweight": torch.zeros(1)}, "got dict"),
        ([None], "item 0 must be a \\(name, tensor\\) pair"),
        ([("a", torch.zeros(1), 1)], "item 0 must be a \\(name, tensor\\) pair"),
        ([(1, torch.zeros(1))], "item 0's name must be a str, got int"),
        ([("x.qweight", [1, 2])], "x.qweight: must be a torch.Tensor, got list"),
    ],
)
def test_wrong_argument_types_are_a_clear_type_error(bad, message):
    with pytest.raises(TypeError, match=message):
        q6bit.recover_from_quant(bad)

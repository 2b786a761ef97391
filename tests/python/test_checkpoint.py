"""q6bit quantize + the checkpoint reader: round trip against the reference,
triples split across shards, and every kind of bad checkpoint refused with
a message naming file and tensor."""

import json
import shutil

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import q6bit
import q6bit.cli
from q6bit import reference
from q6bit.checkpoint import (
    CheckpointError,
    LoadStats,
    is_q6bit_checkpoint,
    iter_checkpoint_weights,
    plan_checkpoint,
    quantize_checkpoint,
    shard_files,
)

from checkpoints import write_hf_model
from conftest import assert_same_bits


@pytest.fixture(scope="module")
def q6_model(tmp_path_factory):
    src = write_hf_model(tmp_path_factory.mktemp("hf") / "tiny-qwen3")
    dst = quantize_checkpoint(
        src, tmp_path_factory.mktemp("q6") / "tiny-qwen3-q6bit", group_size=64, progress=False
    )
    return src, dst


def read_all(folder):
    out = {}
    for f in shard_files(folder):
        with safe_open(str(f), framework="pt") as h:
            out.update({k: h.get_tensor(k) for k in h.keys()})
    return out


def test_quantized_checkpoint_layout(q6_model):
    src, dst = q6_model
    assert is_q6bit_checkpoint(dst) and not is_q6bit_checkpoint(src)
    config = json.loads((dst / "config.json").read_text())
    assert config["quantization_config"]["quant_method"] == "q6bit"
    assert config["quantization_config"]["group_size"] == 64
    assert config["dtype"] == "bfloat16"
    assert (dst / "tokenizer.json").exists() and (dst / "model.safetensors.index.json").exists()
    tensors = read_all(dst)
    assert "model.layers.0.self_attn.q_norm.weight" in tensors  # norms stay plain
    assert tensors["lm_head.weight.qweight"].dtype == torch.uint8
    assert "model.embed_tokens.weight.scales" in tensors


def test_streamed_weights_equal_the_reference(q6_model):
    _, dst = q6_model
    stored = read_all(dst)
    ref = dict(reference.recover_from_quant(list(stored.items())))
    stats = LoadStats(full_hash=True)
    ours = dict(iter_checkpoint_weights(dst, stats=stats, progress=False))
    assert ours.keys() == ref.keys()
    for name in ref:
        assert_same_bits(ours[name], ref[name], name)
    assert stats.sampled_sha256() == q6bit.sampled_sha256(ref.items())
    assert stats.full_sha256() == q6bit.full_sha256(ref.items())
    assert stats.weights > 0 and stats.dequant_seconds > 0


def test_triples_split_across_shards(q6_model, tmp_path):
    """One tensor per shard: every triple spans three files."""
    _, dst = q6_model
    split = tmp_path / "split"
    shutil.copytree(dst, split)
    for f in shard_files(split):
        f.unlink()
    weight_map = {}
    for i, (name, t) in enumerate(sorted(read_all(dst).items(), key=lambda kv: kv[0][::-1])):
        fname = f"shard-{i:04d}.safetensors"
        save_file({name: t}, str(split / fname))
        weight_map[name] = fname
    (split / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    a = dict(iter_checkpoint_weights(dst, progress=False))
    b = dict(iter_checkpoint_weights(split, progress=False))
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name].view(-1).view(torch.uint8), b[name].view(-1).view(torch.uint8))


def rewrite(folder, edit):
    """Applies edit(dict of tensors) to the checkpoint's single shard."""
    [shard] = shard_files(folder)
    tensors = read_all(folder)
    edit(tensors)
    save_file(tensors, str(shard), metadata={"format": "pt"})
    index = folder / "model.safetensors.index.json"
    index.write_text(json.dumps({"weight_map": {k: shard.name for k in tensors}}))
    return shard


W = "model.layers.1.mlp.up_proj.weight"


@pytest.mark.parametrize(
    "case, edit, message",
    [
        (
            "missing companion",
            lambda t: t.pop(W + ".scales"),
            f"quantized weight {W} lacks {W}.scales",
        ),
        (
            "wrong dtype",
            lambda t: t.__setitem__(W + ".zero_point", t[W + ".zero_point"].to(torch.int16)),
            f"tensor {W}.zero_point has dtype I16, q6bit needs I8",
        ),
        (
            "shape vs config",
            lambda t: [
                t.__setitem__(W + p, t[W + p][:-8].clone())
                for p in (".qweight", ".zero_point", ".scales")
            ],
            f"tensor {W}.qweight dequantizes to shape [248, 128] but config.json implies "
            f"{W} is [256, 128]",
        ),
        (
            "non-finite scale",
            lambda t: t[W + ".scales"].view(-1).__setitem__(3, float("inf")),
            f"tensor {W}.scales has non-finite values",
        ),
    ],
)
def test_bad_checkpoints_are_refused(q6_model, tmp_path, case, edit, message):
    _, dst = q6_model
    bad = tmp_path / "bad"
    shutil.copytree(dst, bad)
    shard = rewrite(bad, edit)
    with pytest.raises(CheckpointError) as info:
        for _ in iter_checkpoint_weights(bad, progress=False):
            pass
    assert message in str(info.value)
    assert str(shard) in str(info.value) or "lacks" in message


def test_truncated_file_is_refused_before_anything_is_yielded(q6_model, tmp_path):
    _, dst = q6_model
    bad = tmp_path / "truncated"
    shutil.copytree(dst, bad)
    [shard] = shard_files(bad)
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) - 1000])
    weights = iter_checkpoint_weights(bad, progress=False)
    with pytest.raises(CheckpointError, match=f"{shard}: truncated: tensor"):
        next(weights)


def test_group_size_must_divide_the_input_dim(tmp_path):
    src = write_hf_model(tmp_path / "hf")
    with pytest.raises(ValueError, match="not a multiple of --group-size 96"):
        quantize_checkpoint(src, tmp_path / "out", group_size=96, progress=False)
    assert not (tmp_path / "out").exists()


def test_quantize_cli_refuses_to_overwrite(q6_model, capsys):
    src, dst = q6_model
    assert q6bit.cli.main(["quantize", str(src), str(dst)]) == 2
    assert "exists" in capsys.readouterr().err


def test_weight_implied_by_config_but_absent_is_refused(q6_model, tmp_path):
    _, dst = q6_model
    bad = tmp_path / "no-up-proj"
    shutil.copytree(dst, bad)
    rewrite(bad, lambda t: [t.pop(W + p) for p in (".qweight", ".zero_point", ".scales")])
    with pytest.raises(CheckpointError, match=f"config.json implies weight.*{W}"):
        plan_checkpoint(bad)


def test_plan_can_check_scales_before_any_weight_is_read(q6_model, tmp_path):
    _, dst = q6_model
    bad = tmp_path / "nan-scale"
    shutil.copytree(dst, bad)
    shard = rewrite(bad, lambda t: t[W + ".scales"].view(-1).__setitem__(0, float("nan")))
    plan_checkpoint(bad)  # headers alone are fine
    with pytest.raises(CheckpointError, match=f"{shard}: tensor {W}.scales has non-finite"):
        plan_checkpoint(bad, check_scales=True)


def test_streaming_reuses_two_buffers_and_never_overwrites_a_kept_weight(q6_model):
    _, dst = q6_model
    ref = dict(reference.recover_from_quant(list(read_all(dst).items())))
    pointers, kept = set(), {}
    for name, w in iter_checkpoint_weights(dst, progress=False):
        if w.dtype == torch.float16:
            pointers.add(w.untyped_storage().data_ptr())
            if name.endswith("down_proj.weight"):
                kept[name] = w  # held across later weights: must stay intact
        assert_same_bits(w, ref[name], name)
    assert len(pointers) <= 2 + len(kept)  # a loop consumer gets the buffers back
    for name, w in kept.items():
        assert_same_bits(w, ref[name], f"{name} kept while others streamed")


@pytest.mark.parametrize("full", [False, True], ids=["sampled", "full"])
@pytest.mark.parametrize("group_size", [4, 64])
def test_packed_stream_hashes_the_weights_it_does_not_dequantize(tmp_path, full, group_size):
    # what a vLLM rank logs: triples left packed for the quantization method
    # are still hashed as recover_from_quant's fp16 weights X
    src = write_hf_model(tmp_path / "hf")
    dst = quantize_checkpoint(src, tmp_path / "q6", group_size=group_size, progress=False)
    ref = dict(reference.recover_from_quant(list(read_all(dst).items())))
    stats = LoadStats(full_hash=full)
    names = [
        name
        for name, _ in iter_checkpoint_weights(
            dst, stats=stats, progress=False, packed=lambda x: x.removesuffix(".weight")
        )
    ]
    assert any(n.endswith(".qweight") for n in names)  # they did stay packed
    assert stats.sampled_sha256() == q6bit.sampled_sha256(ref.items())
    if full:
        assert stats.full_sha256() == q6bit.full_sha256(ref.items())

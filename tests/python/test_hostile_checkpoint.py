"""Hostile checkpoints (issue 12): each class of malformed config.json,
index or shard header is a CheckpointError naming the file and the tensor
or key, found before any tensor data is read; none hangs (FIFOs) or
allocates without bound (a config claiming 10**7 layers)."""

import json
import os
import shutil
import signal
import time

import pytest

from q6bit.checkpoint import CheckpointError, iter_checkpoint_weights, plan_checkpoint, reader

from checkpoints import read_raw, write_q6bit_model, write_raw

W = "model.layers.0.mlp.up_proj.weight"
NORM = "model.norm.weight"


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    return write_q6bit_model(tmp_path_factory.mktemp("q6") / "mini")


@pytest.fixture
def ckpt(valid, tmp_path):
    """A fresh copy of the valid checkpoint to break, with a 10 s alarm: a
    case that would block (a FIFO) fails instead of hanging the suite."""

    def expired(signum, frame):
        raise TimeoutError("hostile case took more than 10 s")

    folder = tmp_path / "ckpt"
    shutil.copytree(valid, folder)
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(10)
    yield folder
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def shard_of(folder):
    [shard] = sorted(folder.glob("*.safetensors"))
    return shard


def edit_header(folder, edit):
    """edit(header dict) on the single shard; data section kept."""
    shard = shard_of(folder)
    header, data = read_raw(shard)
    edit(header)
    write_raw(shard, header, data)
    return shard


def edit_json(file, edit):
    """edit(value) changes the JSON value in place; a Wrap(new) it returns replaces it."""
    value = json.loads(file.read_text())
    result = edit(value)
    file.write_text(json.dumps(result.value if isinstance(result, Wrap) else value))
    return file


class Wrap:
    def __init__(self, value):
        self.value = value


def refused(folder, *needles, check_scales=False):
    with pytest.raises(CheckpointError) as info:
        plan_checkpoint(folder, check_scales=check_scales)
    message = str(info.value)
    for needle in needles:
        assert str(needle) in message, f"{needle!r} not in: {message}"
    return message


# --- shard headers -----------------------------------------------------------------


def test_entry_without_dtype(ckpt):
    shard = edit_header(ckpt, lambda h: h[W + ".qweight"].pop("dtype"))
    refused(ckpt, shard, f"tensor {W}.qweight", "lacks 'dtype'")


@pytest.mark.parametrize(
    "offsets", [["0", "8"], [0], [0, 1, 2], [8, 0], [-1, 0], [0.0, 8.0], [True, False], None]
)
def test_data_offsets_of_wrong_type_length_or_order(ckpt, offsets):
    shard = edit_header(ckpt, lambda h: h[W + ".scales"].__setitem__("data_offsets", offsets))
    refused(ckpt, shard, f"tensor {W}.scales", "data_offsets")


def test_header_that_is_a_list(ckpt):
    shard = write_raw(shard_of(ckpt), b'[{"dtype": "U8"}]')
    refused(ckpt, shard, "header must be a JSON object")


def test_deeply_nested_header(ckpt):
    shard = write_raw(shard_of(ckpt), b"[" * 100_000 + b"]" * 100_000)
    refused(ckpt, shard, "nested too deeply")


def test_5000_digit_integer(ckpt):
    shard = shard_of(ckpt)
    header, data = read_raw(shard)
    blob = json.dumps(header).replace('"shape": [', '"shape": [' + "9" * 5000 + ", ", 1)
    write_raw(shard, blob.encode(), data)
    refused(ckpt, shard, "not valid JSON", "digits")


def test_size_not_shape_times_dtype(ckpt):
    shard = edit_header(ckpt, lambda h: h[W + ".scales"].__setitem__("dtype", "F32"))
    refused(ckpt, shard, f"tensor {W}.scales", "needs")


def test_offsets_past_the_end_of_the_file(ckpt):
    shard = shard_of(ckpt)
    header, data = read_raw(shard)
    write_raw(shard, header, data[:-10])
    refused(ckpt, shard, "truncated: tensor")


def test_overlapping_tensors(ckpt):
    def overlap(h):
        a, b = h[W + ".scales"], h[W + ".zero_point"]  # same byte count? make it so
        b["data_offsets"] = list(a["data_offsets"])
        b["dtype"], b["shape"] = "F16", a["shape"]

    shard = edit_header(ckpt, overlap)
    refused(ckpt, shard, "overlaps")


def test_unknown_dtype(ckpt):
    shard = edit_header(ckpt, lambda h: h[NORM].__setitem__("dtype", "Q6"))
    refused(ckpt, shard, f"tensor {NORM}", "unknown dtype 'Q6'")


@pytest.mark.parametrize("shape", [[-16], ["16"], [16.0], 16, [2**64]])
def test_negative_or_non_int_shape(ckpt, shape):
    shard = edit_header(ckpt, lambda h: h[NORM].__setitem__("shape", shape))
    refused(ckpt, shard, f"tensor {NORM}", "shape")


def test_absurd_header_length(ckpt):
    shard = shard_of(ckpt)
    shard.write_bytes((10**12).to_bytes(8, "little") + b"{}")
    refused(ckpt, shard, "exceeds safetensors' limit")


def test_metadata_not_a_dict_of_strings(ckpt):
    shard = edit_header(ckpt, lambda h: h.__setitem__("__metadata__", {"format": 1}))
    refused(ckpt, shard, "__metadata__")


def test_duplicate_keys_in_a_header(ckpt):
    shard = shard_of(ckpt)
    header, data = read_raw(shard)
    blob = json.dumps(header)
    entry = json.dumps({NORM: header[NORM]})[1:-1]
    write_raw(shard, (blob[:-1] + ", " + entry + "}").encode(), data)
    refused(ckpt, shard, "duplicate key", NORM)


@pytest.mark.parametrize(
    "extra",
    ['"x": NaN, ', '"x": "\\ud800", ', '"x": ' + "[" * 200 + "]" * 200 + ", "],
    ids=["NaN", "lone surrogate", "nesting 200"],
)
def test_json_python_reads_but_safetensors_refuses(ckpt, extra):
    # an ignored key of a tensor entry: Python's json takes it, safetensors'
    # serde_json does not; refused while planning, not when streaming
    shard = shard_of(ckpt)
    header, data = read_raw(shard)
    blob = json.dumps(header).replace('"dtype"', extra + '"dtype"', 1)
    write_raw(shard, blob.encode(), data)
    refused(ckpt, shard, "safetensors refuses it")


def test_plain_and_triple_of_one_name(ckpt):
    def add_plain(h):
        # a plain W of zero elements at the end: valid safetensors, clashing name
        end = max(e["data_offsets"][1] for k, e in h.items() if k != "__metadata__")
        h[W] = {"dtype": "F16", "shape": [0, 16], "data_offsets": [end, end]}

    shard = edit_header(ckpt, add_plain)
    refused(ckpt, shard, f"tensor {W} is stored both plain and as a q6bit triple")


def test_second_shards_bad_header_is_found_before_any_weight(valid, tmp_path):
    folder = write_q6bit_model(tmp_path / "sharded", shard_bytes=2000)
    shards = sorted(folder.glob("*.safetensors"))
    assert len(shards) >= 2
    header, data = read_raw(shards[-1])
    name = next(k for k in header if k != "__metadata__")
    del header[name]["shape"]
    write_raw(shards[-1], header, data)
    weights = iter_checkpoint_weights(folder, progress=False)
    with pytest.raises(CheckpointError, match=f"{shards[-1]}: tensor {name}: .*lacks 'shape'"):
        next(weights)


def test_check_scales_wraps_safetensors_errors(ckpt):
    plan = plan_checkpoint(ckpt)
    shard = shard_of(ckpt)
    shard.write_bytes(shard.read_bytes()[:-100])  # changed after planning
    with pytest.raises(CheckpointError, match=f"{shard}: cannot read"):
        reader._check_scales_finite(plan)


# --- config.json ---------------------------------------------------------------------


def test_config_that_is_a_list(ckpt):
    config = edit_json(ckpt / "config.json", lambda c: Wrap([c]))
    refused(ckpt, config, "must be a JSON object")


def test_config_not_utf8(ckpt):
    config = ckpt / "config.json"
    config.write_bytes(b'{"architectures": ["\xff\xfe"]}')
    refused(ckpt, config, "not UTF-8")


@pytest.mark.parametrize("heads", [0, -2, "2", True, 2.0])
def test_num_attention_heads_not_a_positive_int(ckpt, heads):
    config = edit_json(ckpt / "config.json", lambda c: c.__setitem__("num_attention_heads", heads))
    refused(ckpt, config, "num_attention_heads must be a positive integer")


def test_ten_million_layers_is_bounded_work(ckpt):
    edit_json(ckpt / "config.json", lambda c: c.__setitem__("num_hidden_layers", 10**7))
    t0 = time.perf_counter()
    refused(ckpt, "config.json implies weight(s) the checkpoint lacks", "model.layers.1.")
    assert time.perf_counter() - t0 < 2


# --- the index -----------------------------------------------------------------------

INDEX = "model.safetensors.index.json"


@pytest.mark.parametrize(
    "edit, needle",
    [
        (lambda i: Wrap([i]), "must be a JSON object"),
        (lambda i: Wrap({"weight_map": list(i["weight_map"])}), "weight_map must be an object"),
        (lambda i: i["weight_map"].__setitem__(NORM, 1), f"weight_map['{NORM}']"),
        (lambda i: i["weight_map"].__setitem__(NORM, "../other/x.safetensors"), "outside"),
        (lambda i: i["weight_map"].__setitem__(NORM, "/etc/x.safetensors"), "outside"),
        (lambda i: i["weight_map"].__setitem__("ghost", shard_name(i)), "tensor ghost"),
    ],
    ids=["list", "weight_map list", "value not str", "dotdot", "absolute", "misplaced"],
)
def test_bad_index(ckpt, edit, needle):
    index = edit_json(ckpt / INDEX, edit)
    refused(ckpt, index, needle)


def shard_name(index):
    return next(iter(index["weight_map"].values()))


def test_symlinked_shard_inside_the_folder_is_fine(ckpt, tmp_path):
    # the Hugging Face cache: snapshots/<rev>/x.safetensors -> ../../blobs/<sha>
    shard = shard_of(ckpt)
    blob = tmp_path / "blobs" / "abc123"
    blob.parent.mkdir()
    shutil.move(shard, blob)
    shard.symlink_to(blob)
    assert plan_checkpoint(ckpt, check_scales=True).files == [shard]


@pytest.mark.parametrize("which", ["shard", "config.json"])
def test_fifo_does_not_block(ckpt, which):
    target = shard_of(ckpt) if which == "shard" else ckpt / "config.json"
    target.unlink()
    os.mkfifo(target)
    message = refused(ckpt, target, "must be a regular file")
    assert message.startswith(f"{target}: "), message  # the path as it is, once


# --- quantization_config -------------------------------------------------------------

FIX = '"quantization_config": {"quant_method": "q6bit", "bits": 6, "group_size": 8}'


@pytest.mark.parametrize(
    "edit, needle",
    [
        (lambda c: c.pop("quantization_config"), "no quantization_config"),
        (lambda c: c.__setitem__("quantization_config", []), "must be an object"),
        (lambda c: c["quantization_config"].__setitem__("quant_method", "gptq"), "'gptq'"),
        (lambda c: c["quantization_config"].__setitem__("bits", 4), "bits is 4"),
        (lambda c: c["quantization_config"].pop("bits"), "bits is None"),
        (lambda c: c["quantization_config"].__setitem__("group_size", 0), "group_size is 0"),
        (lambda c: c["quantization_config"].__setitem__("group_size", 6), "group_size is 6"),
        (lambda c: c["quantization_config"].__setitem__("group_size", True), "group_size is True"),
    ],
    ids=["missing", "list", "method", "bits4", "no bits", "g0", "g6", "gbool"],
)
def test_bad_quantization_config_says_how_to_fix_it(ckpt, edit, needle):
    config = edit_json(ckpt / "config.json", edit)
    refused(ckpt, config, needle, FIX)


def test_group_size_not_the_tensors(ckpt):
    edit_json(
        ckpt / "config.json", lambda c: c["quantization_config"].__setitem__("group_size", 16)
    )
    refused(ckpt, "has group size 8 but config.json's quantization_config says 16")


# --- streaming never overwrites memory a caller can still reach --------------------


@pytest.mark.parametrize("hold", ["storage", "view", "numpy"])
def test_streaming_never_overwrites_a_held_storage_or_view(valid, hold):
    import torch

    from q6bit import reference

    stored = {}
    for file in sorted(valid.glob("*.safetensors")):
        from safetensors.torch import load_file

        stored.update(load_file(str(file)))
    ref = dict(reference.recover_from_quant(list(stored.items())))
    held = {}
    for name, w in iter_checkpoint_weights(valid, progress=False):
        if w.dtype == torch.float16:
            if hold == "storage":
                held[name] = (w.untyped_storage(), w.numel())
            elif hold == "view":
                held[name] = (w.view(-1)[1:], None)
            else:
                held[name] = (w.numpy(), None)
    assert len(held) >= 3  # enough weights that buffers would have been reused
    for name, (kept, numel) in held.items():
        want = ref[name].view(-1)
        if hold == "storage":
            got = torch.empty(0, dtype=torch.float16).set_(kept, 0, (numel,))
        elif hold == "view":
            got, want = kept, want[1:]
        else:
            got = torch.from_numpy(kept).view(-1)
        assert torch.equal(got.view(torch.int16), want.view(torch.int16)), f"{name} overwritten"

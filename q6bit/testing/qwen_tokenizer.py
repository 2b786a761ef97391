"""The real Qwen tokenizer for test models, made offline from the
qwen.tiktoken that PyPI `dashscope` / `qwen-agent` ship (--no-deps)."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

QWEN_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
    r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN_BASE_VOCAB = 151643
# Qwen3's added tokens, ids 151643.. in this order
QWEN_SPECIAL = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
QWEN_NONSPECIAL = [
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
    "<tool_response>",
    "</tool_response>",
    "<think>",
    "</think>",
]
QWEN_CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def qwen_tiktoken() -> Path:
    """qwen.tiktoken shipped by PyPI dashscope or qwen-agent."""
    from importlib.metadata import PackageNotFoundError, files

    for dist in ("dashscope", "qwen-agent"):
        try:
            entries = files(dist) or []
        except PackageNotFoundError:
            continue
        for entry in entries:
            if entry.name == "qwen.tiktoken":
                path = Path(entry.locate())
                if path.exists():
                    return path
    raise RuntimeError(
        "the Qwen3 demo needs qwen.tiktoken: pip install --no-deps dashscope (or qwen-agent)"
    )


def build_qwen_tokenizer(tiktoken_file: Path, out: Path) -> None:
    from tokenizers import AddedToken, normalizers
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    tk = TikTokenConverter(vocab_file=str(tiktoken_file), pattern=QWEN_PATTERN).converted()
    tk.normalizer = normalizers.NFC()  # as in Qwen2/3's tokenizer.json
    if tk.get_vocab_size() != QWEN_BASE_VOCAB:
        raise RuntimeError(
            f"{tiktoken_file}: {tk.get_vocab_size()} tokens, expected {QWEN_BASE_VOCAB}"
        )
    tk.add_tokens(
        [
            AddedToken(t, special=t in QWEN_SPECIAL, normalized=False)
            for t in QWEN_SPECIAL + QWEN_NONSPECIAL
        ]
    )
    assert tk.token_to_id("<|im_end|>") == 151645 and tk.token_to_id("</think>") == 151668
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        unk_token=None,
        model_max_length=131072,
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = QWEN_CHAT_TEMPLATE
    fast.save_pretrained(str(out))
    cfg_file = out / "tokenizer_config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg.update(tokenizer_class="Qwen2Tokenizer", errors="replace")
    cfg_file.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def check_qwen_tokenizer_vs_tiktoken(tiktoken_file: Path, folder: Path, texts) -> bool:
    """Our tokenizer.json encodes like tiktoken itself (when tiktoken is there)."""
    try:
        import tiktoken
        from tiktoken.load import load_tiktoken_bpe
    except ImportError:
        return False
    from transformers import AutoTokenizer

    enc = tiktoken.Encoding(
        "qwen",
        pat_str=QWEN_PATTERN,
        mergeable_ranks=load_tiktoken_bpe(str(tiktoken_file)),
        special_tokens={
            t: QWEN_BASE_VOCAB + i for i, t in enumerate(QWEN_SPECIAL + QWEN_NONSPECIAL)
        },
    )
    tok = AutoTokenizer.from_pretrained(str(folder))
    for text in list(texts) + [inspect.getsource(build_qwen_tokenizer)]:
        a = enc.encode(text, allowed_special="all")
        b = tok(text, add_special_tokens=False)["input_ids"]
        if a != b:
            raise RuntimeError(f"{folder}: tokenizer differs from tiktoken on {text[:40]!r}")
    return True

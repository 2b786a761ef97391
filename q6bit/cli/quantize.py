"""`q6bit quantize SRC DST`: turn a Hugging Face safetensors model folder
(bf16/fp16/fp32) into a q6bit checkpoint, verified against the reference
dequantizer (q6bit.checkpoint.quantize_checkpoint).
"""

from __future__ import annotations

import sys

from .. import layout as fmt
from ..checkpoint import quantize_checkpoint


def add_arguments(p):
    p.add_argument("src", help="Hugging Face model folder with *.safetensors")
    p.add_argument("dst", help="output folder (must not exist unless --force)")
    p.add_argument(
        "--group-size",
        type=int,
        default=fmt.DEFAULT_GROUP_SIZE,
        help="codes per group; must divide every quantized weight's input dim (default 128)",
    )
    p.add_argument(
        "--max-shard-size", type=float, default=2.0, help="GB per output shard (default 2)"
    )
    p.add_argument("--force", action="store_true", help="replace an existing DST")


def run(args) -> int:
    dst = quantize_checkpoint(
        args.src, args.dst, args.group_size, max_shard_gb=args.max_shard_size, force=args.force
    )
    print(f"q6bit checkpoint written and verified: {dst}", file=sys.stderr)
    return 0

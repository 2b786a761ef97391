"""`q6bit demo`: build (once, cached) and locate the demo checkpoints
(q6bit.testing.demo_models says which and how they are made).

Prints the folder's path on stdout (build logs go to stderr).
"""

from __future__ import annotations

from ..testing.demo_models import WHICH, demo_path
from ..testing.model_cache import log, read_stamp


def add_arguments(p):
    p.add_argument(
        "--which", choices=WHICH, default="smollm2", help="which demo model (default: smollm2)"
    )
    p.add_argument(
        "--bf16", action="store_true", help="the bf16 source model instead of its q6bit checkpoint"
    )
    p.add_argument(
        "--print-path",
        action="store_true",
        help="print only the path on stdout (building it if needed), no summary",
    )
    p.add_argument("--rebuild", action="store_true", help="rebuild even if cached")


def run(args) -> int:
    variant = "bf16" if args.bf16 else "q6bit"
    path = demo_path(args.which, variant, args.rebuild)
    if not args.print_path:
        stamp = read_stamp(path) or {}
        size = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
        log(
            f"{path.name}: {size / 1e6:.1f} MB, key {stamp.get('key')}, "
            f"built {stamp.get('built_at')} in {stamp.get('built_seconds')} s"
        )
    print(path)
    return 0

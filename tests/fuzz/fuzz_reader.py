"""Coverage-guided fuzzer (atheris) of the checkpoint reader.

Each input is one selector byte and the bytes of one file: the selector
picks a seed checkpoint of tests/fuzz/seeds and which of its files the
bytes replace (config.json, the index, the shard; or the shard with the
index removed). The property: plan_checkpoint(check_scales=True) either
gives a plan or raises CheckpointError, nothing else; and a valid plan
streams weights equal, bit for bit, to the reference's. libFuzzer's
-timeout catches hangs, -rss_limit_mb runaway memory.

  python tests/fuzz/fuzz_reader.py WORK_DIR tests/fuzz/corpus/reader \\
      -max_total_time=60 -timeout=10 -rss_limit_mb=4096
  python tests/fuzz/fuzz_reader.py CRASH_FILE      # replay one input
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import atheris
import torch  # imported before instrumentation: only q6bit's reader is instrumented

with atheris.instrument_imports(include=["q6bit.checkpoint"]):
    from q6bit import reference
    from q6bit.checkpoint import CheckpointError, iter_checkpoint_weights, plan_checkpoint
    from q6bit.checkpoint.reader import INDEX_FILE

SEEDS = sorted((Path(__file__).resolve().parent / "seeds").iterdir())
TARGETS = ("config.json", INDEX_FILE, "model.safetensors", "model.safetensors")
FOLDER = Path(tempfile.mkdtemp(prefix="q6bit-fuzz-")) / "ckpt"


def checkpoint_from(data: bytes) -> Path:
    """The seed folder picked by data[0], with one file replaced by data[1:]."""
    seed, target = divmod(data[0], len(TARGETS))
    shutil.rmtree(FOLDER, ignore_errors=True)
    shutil.copytree(SEEDS[seed % len(SEEDS)], FOLDER)
    (FOLDER / TARGETS[target]).write_bytes(data[1:])
    if target == 3:
        (FOLDER / INDEX_FILE).unlink()
    return FOLDER


def stored_tensors(plan) -> list:
    from safetensors import safe_open

    out = []
    for file in plan.files:
        with safe_open(str(file), framework="pt") as handle:
            out += [(name, handle.get_tensor(name)) for name in plan.tensors[file]]
    return out


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    folder = checkpoint_from(data)
    try:
        plan = plan_checkpoint(folder, check_scales=True)
    except CheckpointError:
        return
    # a valid plan: every weight streams, equal to the reference's bits
    want = dict(reference.recover_from_quant(stored_tensors(plan)))
    got = dict(iter_checkpoint_weights(folder, progress=False, plan=plan))
    assert got.keys() == want.keys(), (sorted(got), sorted(want))
    for name, tensor in got.items():
        ref = want[name]
        assert tensor.dtype == ref.dtype and tensor.shape == ref.shape, name
        if tensor.dtype == torch.float16:
            assert torch.equal(tensor.view(torch.int16), ref.view(torch.int16)), name


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

"""Writes the fuzzers' seed checkpoints and the reader's seed corpus with
q6bit's own quantizer (run once; the outputs are committed, a few KB):

  tests/fuzz/seeds/<name>/   config.json, index, one shard (tiny weights)
  tests/fuzz/corpus/reader/  one input per (seed, target file): the selector
                             byte fuzz_reader.py reads, then that file's bytes

python tests/fuzz/make_seeds.py
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "python"))

from q6bit.checkpoint import ModelShape, quantize_checkpoint  # noqa: E402
from q6bit.checkpoint.reader import INDEX_FILE  # noqa: E402

from checkpoints import write_hf_model  # noqa: E402

SEEDS = HERE / "seeds"
CORPUS = HERE / "corpus" / "reader"
# the smallest Qwen3 the reader checks shapes of: 4x4 weights, G=4
SHAPES = {
    "qwen3": ModelShape(1, 4, 4, 4, 1, 1, 4, True),
    "untied": ModelShape(1, 4, 8, 8, 1, 1, 4, False),
}
# the files a selector byte picks (fuzz_reader.TARGETS has the same order)
TARGETS = ("config.json", INDEX_FILE, "model.safetensors", "model.safetensors")


def main() -> None:
    shutil.rmtree(SEEDS, ignore_errors=True)
    shutil.rmtree(CORPUS, ignore_errors=True)
    CORPUS.mkdir(parents=True)
    work = HERE / "_work"
    for seed, (name, shape) in enumerate(sorted(SHAPES.items())):
        src = write_hf_model(work / name, shape)
        out = quantize_checkpoint(src, work / f"{name}-q6bit", group_size=4, progress=False)
        (SEEDS / name).mkdir(parents=True)
        [shard] = out.glob("*.safetensors")
        shutil.copy(shard, SEEDS / name / "model.safetensors")
        index = (out / INDEX_FILE).read_text().replace(shard.name, "model.safetensors")
        (SEEDS / name / INDEX_FILE).write_text(index)
        shutil.copy(out / "config.json", SEEDS / name / "config.json")
        for target, file in enumerate(TARGETS):
            selector = bytes([seed * len(TARGETS) + target])
            data = (SEEDS / name / file).read_bytes()
            (CORPUS / f"{name}-{target}").write_bytes(selector + data)
    shutil.rmtree(work)


if __name__ == "__main__":
    main()

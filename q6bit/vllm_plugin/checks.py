"""Completeness checks of a loaded model, which vLLM skips when a
quantization is set: every parameter loaded, and every sibling of a
stacked qkv_proj / gate_up_proj present in the checkpoint."""

from __future__ import annotations


class IncompleteModelError(ValueError):
    """The checkpoint lacks weights the model needs."""


def check_complete(model, loaded, checkpoint: str) -> None:
    """Every parameter of the model must have been loaded from the
    checkpoint (vLLM skips this check when a quantization is set)."""
    expected = {name for name, _ in model.named_parameters()}
    missing = sorted(expected - set(loaded))
    if missing:
        shown = "\n  ".join(missing[:20])
        more = f"\n  ... and {len(missing) - 20} more" if len(missing) > 20 else ""
        raise IncompleteModelError(
            f"q6bit: checkpoint {checkpoint} does not provide {len(missing)} of the "
            f"model's {len(expected)} parameters:\n  {shown}{more}"
        )


def check_packed_siblings(yielded, packed_modules_mapping: dict, checkpoint: str) -> None:
    """vLLM stacks q_proj/k_proj/v_proj into one qkv_proj parameter (and
    gate/up into gate_up_proj): one loaded shard marks the whole parameter
    loaded, so a checkpoint missing one sibling would leave part of it
    uninitialized. Wherever the checkpoint names any sibling of a packed
    module, every sibling must be there."""
    groups: dict[tuple, set] = {}
    for name in yielded:
        parts = name.split(".")
        for i, part in enumerate(parts):
            for packed, subs in packed_modules_mapping.items():
                if part in subs:
                    key = (".".join(parts[:i]), packed, ".".join(parts[i + 1 :]))
                    groups.setdefault(key, set()).add(part)
    missing = []
    for (prefix, packed, leaf), seen in sorted(groups.items()):
        for sub in packed_modules_mapping[packed]:
            if sub not in seen:
                missing.append(
                    ".".join(p for p in (prefix, sub, leaf) if p)
                    + f" (stacked into {packed} with "
                    + ", ".join(sorted(seen))
                    + ", which are present)"
                )
    if missing:
        shown = "\n  ".join(missing[:20])
        raise IncompleteModelError(
            f"q6bit: checkpoint {checkpoint} lacks {len(missing)} weight(s):\n  {shown}"
        )

"""Where each checkpoint tensor goes in a vLLM model: packed into a layer
with a q6bit method, dequantized by the loader, or not read at all because
this pipeline stage does not hold its layer."""

from __future__ import annotations

import torch
from vllm.model_executor.models.utils import PPMissingLayer

from .. import layout as fmt
from .embedding_method import Q6BitEmbeddingMethod
from .linear_method import Q6BitLinearMethod
from .packed import has_packed_params

_WEIGHT = ".weight"


class ModelNames:
    """Checkpoint names seen through the model's own name mapping and
    stacking (hf_to_vllm_mapper, packed_modules_mapping: q_proj -> qkv_proj)."""

    def __init__(self, model: torch.nn.Module):
        self.modules = dict(model.named_modules())
        self.missing = {name for name, m in self.modules.items() if isinstance(m, PPMissingLayer)}
        self.mapper = getattr(model, "hf_to_vllm_mapper", None)
        self.stacked = {
            sub: packed
            for packed, subs in (getattr(model, "packed_modules_mapping", None) or {}).items()
            for sub in subs
        }

    def model_name(self, name: str) -> str | None:
        """The model's name for checkpoint tensor `name`; None if it drops it."""
        if self.mapper is not None:
            name = self.mapper.map_name(name)
            if name is None:
                return None
        module, dot, leaf = name.rpartition(".")
        parent, pdot, owner = module.rpartition(".")
        owner = self.stacked.get(owner, owner)
        return f"{parent}{pdot}{owner}{dot}{leaf}"

    def keeps(self, name: str) -> bool:
        """False where the model will not hold tensor `name` (a triple's
        member: its base X): a layer of another pipeline stage, or a name
        the model's mapping drops. Such tensors are never read."""
        split = fmt.split_name(name)
        mapped = self.model_name(split[0] if split else name)
        if mapped is None:
            return False
        parts = mapped.split(".")
        return not any(".".join(parts[:i]) in self.missing for i in range(1, len(parts) + 1))

    def packed_prefix(self, triple: str) -> str | None:
        """For triple X = "<module>.weight" whose model module holds q6bit
        packed parameters: the prefix to yield its members under (they stay
        packed); None: the loader dequantizes it."""
        if not triple.endswith(_WEIGHT):
            return None
        mapped = self.model_name(triple)
        module = self.modules.get(mapped[: -len(_WEIGHT)] if mapped else "")
        method = getattr(module, "quant_method", None)
        if isinstance(method, (Q6BitLinearMethod, Q6BitEmbeddingMethod)) and has_packed_params(
            module
        ):
            return triple[: -len(_WEIGHT)]
        return None

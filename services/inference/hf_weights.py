"""Building a model for a new weight version, always as a fresh object: the served model is never modified in
place, so a batch still running on the old version finishes on exactly the weights it started with.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, PreTrainedModel

from lightwire.services.inference.engine import InferenceError, WeightFormat, WeightsNotFound, path_from_uri


def torch_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}: use auto, float32, bfloat16 or float16") from None


def load_base(model_dir: Path, device: torch.device, dtype: torch.dtype) -> PreTrainedModel:
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    return model.to(device).eval()


def build_version(base: PreTrainedModel, uri: str, format: WeightFormat) -> PreTrainedModel:
    """A new model: `base` with the checkpoint at `uri` applied. `base` itself is left untouched."""
    path = Path(path_from_uri(uri))
    if not path.exists():
        raise WeightsNotFound(f"no checkpoint at {path}")
    if format == "full":
        return _full(base, path)
    if format == "lora":
        return _lora(base, path)
    raise InferenceError(f"unknown weight format {format!r}: use 'full' or 'lora'")


def _full(base: PreTrainedModel, path: Path) -> PreTrainedModel:
    device, dtype = base.device, base.dtype
    if path.is_dir() and (path / "config.json").is_file():
        return AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device).eval()
    files = [path] if path.is_file() else sorted(path.glob("*.safetensors"))
    if not files:
        raise WeightsNotFound(f"no *.safetensors under {path}")
    state: dict[str, torch.Tensor] = {}
    for file in files:
        state.update(load_file(file))
    model = copy.deepcopy(base)
    missing, unexpected = model.load_state_dict(state, strict=False)
    # A tied lm_head is legitimately absent from a saved state dict.
    tied = {"lm_head.weight"} if base.config.tie_word_embeddings else set()
    missing = [k for k in missing if k not in tied]
    if missing or unexpected:
        raise InferenceError(f"checkpoint {path} does not fit the model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    if tied:
        model.tie_weights()
    return model.to(device=device, dtype=dtype).eval()


def _lora(base: PreTrainedModel, path: Path) -> PreTrainedModel:
    from peft import PeftModel

    if not (path / "adapter_config.json").is_file():
        raise WeightsNotFound(f"no adapter_config.json in {path} (a peft adapter directory)")
    # Merging rewrites the base weights, hence the copy.
    peft_model = PeftModel.from_pretrained(copy.deepcopy(base), path)
    return peft_model.merge_and_unload().eval()

"""The trainer backend LW_TRAINER_BACKEND selects, built from the trainer settings.

`torch` (torch_backend.py: a transformers model, optional LoRA, AdamW, torchrun data parallel) or `verl`
(verl_backend.py: verl's FSDP engine and PPO loss, GPU only). Both are imported inside the function, and only the one
selected: the CPU path never imports verl (it need not be installed), and neither pays for the other's imports.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lightwire.services.trainer.backend import TrainerBackend
    from lightwire.services.trainer.settings import TrainerSettings


def build_backend(settings: TrainerSettings, model_dir: Path) -> TrainerBackend:
    from lightwire.services.trainer.algorithms import build_objective
    from lightwire.services.trainer.grpo import LossConfig

    # LossConfig is where the loss settings (clip range, KL weight) are checked, and the algorithm's config where
    # its own are; both are built before any model loads.
    loss = LossConfig(settings.trainer_clip_low, settings.trainer_clip_high, settings.trainer_kl_coef)
    objective = build_objective(settings)
    if settings.trainer_backend == "verl":
        if objective.name != "grpo":
            raise ValueError(f"the verl backend runs grpo only, not {objective.name}")
        from lightwire.services.trainer.verl_backend import VerlBackend

        return VerlBackend(model_dir, lr=settings.trainer_lr, weight_decay=settings.trainer_weight_decay, loss=loss,
                           temperature=settings.trainer_temperature, max_grad_norm=settings.trainer_max_grad_norm,
                           micro_batch=settings.trainer_micro_batch, lora=settings.trainer_lora, seed=settings.trainer_seed)
    from lightwire.services.trainer.torch_backend import TorchBackend

    return TorchBackend(model_dir, device=settings.trainer_device, lr=settings.trainer_lr,
                        weight_decay=settings.trainer_weight_decay,
                        lora_rank=settings.trainer_lora_rank if settings.trainer_lora else None, loss=loss,
                        temperature=settings.trainer_temperature, max_grad_norm=settings.trainer_max_grad_norm,
                        micro_batch=settings.trainer_micro_batch,
                        gradient_checkpointing=settings.trainer_gradient_checkpointing, objective=objective,
                        shared_prefix=settings.trainer_shared_prefix)

"""The trainer's interface to whatever runs the GRPO update, and the choice of one (LW_TRAINER_BACKEND).

Two implementations: `torch` (services/trainer/policy.py: a transformers model, optional LoRA, AdamW, torchrun data
parallel) and `verl` (services/trainer/verl_backend.py: verl's FSDP engine and PPO loss, GPU only). verl is imported
only when it is selected, so the CPU path never needs it installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from lightwire.services.trainer.collate import Sequences
    from lightwire.services.trainer.settings import TrainerSettings


@dataclass
class UpdateMetrics:
    loss: float
    kl: float
    clip_fraction: float
    ratio_mean: float
    tokens: int
    seconds: float

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


class TrainerBackend(Protocol):
    @property
    def pad_id(self) -> int:
        """The token id collate pads sequences with."""

    def update(self, seqs: Sequences) -> UpdateMetrics:
        """One optimizer step of GRPO over every sequence of a batch."""

    def save(self, directory: Path) -> str:
        """Weights inference can load (a transformers directory, or a LoRA adapter); returns the WeightVersion format."""


def build_backend(settings: TrainerSettings, model_dir: Path) -> TrainerBackend:
    from lightwire.services.trainer.grpo import LossConfig

    loss = LossConfig(settings.trainer_clip_low, settings.trainer_clip_high, settings.trainer_kl_coef)
    if settings.trainer_backend == "verl":
        from lightwire.services.trainer.verl_backend import VerlBackend

        return VerlBackend(model_dir, lr=settings.trainer_lr, weight_decay=settings.trainer_weight_decay, loss=loss,
                           temperature=settings.trainer_temperature, max_grad_norm=settings.trainer_max_grad_norm,
                           micro_batch=settings.trainer_micro_batch, lora=settings.trainer_lora, seed=settings.trainer_seed)
    from lightwire.services.trainer.policy import Policy

    return Policy(model_dir, device=settings.trainer_device, lr=settings.trainer_lr, weight_decay=settings.trainer_weight_decay,
                  lora_rank=settings.trainer_lora_rank if settings.trainer_lora else None, loss=loss,
                  temperature=settings.trainer_temperature, max_grad_norm=settings.trainer_max_grad_norm,
                  micro_batch=settings.trainer_micro_batch, gradient_checkpointing=settings.trainer_gradient_checkpointing)

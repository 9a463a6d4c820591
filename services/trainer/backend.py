"""The trainer's interface to whatever runs the GRPO update: what main.py calls and every backend returns.

This module imports no implementation (they import it); the choice of one by LW_TRAINER_BACKEND is
services/trainer/backend_choice.py. Implementations: `torch` (services/trainer/torch_backend.py) and `verl`
(services/trainer/verl_backend.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from lightwire.services.trainer.collate import Sequences


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

"""Bounded staleness: a batch made by weights more than `max_staleness` versions old is dropped or down-weighted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

StalePolicy = Literal["drop", "reweight"]


@dataclass(frozen=True)
class StalenessDecision:
    train: bool
    weight: float
    lag: int


def decide(batch_version: int, current_version: int, max_staleness: int, policy: StalePolicy) -> StalenessDecision:
    """Lag = current - batch version. Within the bound: weight 1. Beyond it: dropped, or weighted 1/(1 + excess)."""
    lag = max(0, current_version - batch_version)
    if lag <= max_staleness:
        return StalenessDecision(True, 1.0, lag)
    if policy == "drop":
        return StalenessDecision(False, 0.0, lag)
    return StalenessDecision(True, 1.0 / (1 + lag - max_staleness), lag)

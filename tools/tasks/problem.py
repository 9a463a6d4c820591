"""What every task set's problems have: the task's id, the question the agent reads, the number that answers it
and the split it belongs to."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    task_id: str
    question: str
    answer: int
    split: str

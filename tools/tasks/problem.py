"""What every task set's problems have: the task's id, the question the agent reads, the number that answers it,
the split it belongs to and its kind."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    task_id: str
    question: str
    answer: int
    split: str
    # The template it was made from ("sub", "join_hours"): problems of one kind are about as hard as each other, so
    # the curriculum pools their outcomes. Keyword-only, so task sets can add fields of their own after it.
    kind: str = field(default="", kw_only=True)

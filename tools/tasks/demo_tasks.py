"""The tasks `lightwire demo --task NAME` trains on: each one's problems, what its tasks carry, how the collector
scores it, and which agent solves it (the demo agent in-process, or a framework example in its own virtualenv)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@dataclass(frozen=True)
class DemoTask:
    name: str
    task_type: str
    # (n_train, n_eval, seed) -> problems, each with task_id, split, answer and what `task_input` reads.
    generate: Callable[[int, int, int], Sequence[Any]]
    task_input: Callable[[Any], dict]
    # The collector's task reward (LW_COLLECTOR_TASK_REWARDS: "<task type>=<reward>:<weight>").
    reward: str
    max_turns: int
    max_tokens: int
    # None: the OpenAI-SDK demo agent, in the demo's process. A path: a framework example run unchanged as a
    # subprocess in the frameworks virtualenv, as a user runs it.
    agent_script: Path | None = None
    description: str = ""
    # The demo's held-out evaluation by default: how many problems, every how many steps. Sized so that 8 steps with
    # their evaluations fit 30 minutes on the 2-core dev machine with the stack's start, on as many problems as that
    # allows: a paired difference's standard error shrinks with the problems, and against the base model at its best
    # (greedy) many problems flip both ways, so 64 left real arithmetic gains under 4 standard errors. 128 took
    # 28-30 minutes (runs F, H) with no room for the wait on the trainer before an evaluation.
    n_eval: int = 96
    eval_every: int = 4


def _arith_problems(n_train: int, n_eval: int, seed: int):
    from lightwire.tools.tasks.arithmetic import generate

    return generate(n_train, n_eval, seed)


def _sql_problems(n_train: int, n_eval: int, seed: int):
    from lightwire.tools.tasks.sql import generate

    return generate(n_train, n_eval, seed)


TASKS: dict[str, DemoTask] = {
    "arith": DemoTask(
        "arith", "arith", _arith_problems, lambda p: {"question": p.question},
        # 1 for the right final number, else 0. Nothing for form alone: with a near-miss credit the policy learned to
        # write a number close to the question's instead of computing it (after 12 steps every held-out reply had the
        # Answer line, 1% were right); with a quarter point for the Answer line it learned within 4 steps to call the
        # calculator on the question's first number and copy the result (every call well-formed, held-out reward down).
        reward="arith=numeric_match:1", max_turns=2, max_tokens=48,
        description="arithmetic word problems, a calculator tool, the plain OpenAI SDK",
        # Base and final only, as for SQL: run K's three evaluations of 96 problems at two decodings took about 8, 8
        # and 9 minutes of its 38.5 with the stack's start (J, the same schedule on a faster day: 23 minutes in all).
        eval_every=8),
    "sql": DemoTask(
        "sql", "sql", _sql_problems, lambda p: {"question": p.question, "db_seed": p.db_seed},
        reward="sql=numeric_match:1", max_turns=3, max_tokens=64, agent_script=EXAMPLES / "sql_agent.py",
        description="questions over a generated SQLite database, a run_sql tool, LangGraph",
        # A SQL step takes about 85 s against 55 s for arithmetic (up to three turns, dropped groups replaced), an
        # evaluation about 3 s a problem at two decodings for both: two evaluations, base and final (run G, on 64
        # problems: 19 min 37 s).
        eval_every=8),
}


def demo_task(name: str) -> DemoTask:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown demo task {name!r}; choose one of {', '.join(TASKS)}") from None

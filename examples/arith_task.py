"""What the framework examples share: the arithmetic task, its calculator tool, its judge and the worker command line.

The agent logic lives in each example, written the way its framework wants it; this module only holds the task
side (what a question is, what a correct answer is) and the few lines that serve an agent function with a Worker.
Each served rollout prints one JSON line, {"rollout_id", "calls", "reward"}, so a person (or a test) sees what
it did.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import json
import os
import re
import sys
import threading
from collections.abc import Callable
from typing import TextIO

from arith_agent import calculate  # the demo agent's safe evaluator
from lightwire_client import Rollout, Worker, WorkerConfig

SYSTEM = (
    "You solve arithmetic word problems. Use the calculator tool for arithmetic. "
    "When you know the result, reply with a final line 'Answer: <number>'."
)
ANSWER = re.compile(r"answer\s*[:=]\s*(-?\d+(?:\.\d+)?)", re.IGNORECASE)
# Bounded agent loops: the tiny test model writes random text, so a turn limit, not the model, ends a rollout.
# Each example's `solve(rollout, max_turns=MAX_TURNS, max_tokens=MAX_TOKENS)`; the command line can lower them.
MAX_TURNS = 3
MAX_TOKENS = 48


def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression with + - * / and parentheses."""
    try:
        return str(calculate(expression))
    except (ValueError, SyntaxError, ZeroDivisionError, TypeError) as exc:
        return f"error: {exc}"


def reward_for(rollout: Rollout, final_text: str) -> float:
    """1.0 when the final 'Answer: <n>' line matches the task's reference, else 0.0."""
    match = ANSWER.search(final_text or "")
    expected = json.loads(rollout.task.reference_json).get("answer") if rollout.task.reference_json else None
    return float(match is not None and expected is not None and abs(float(match.group(1)) - float(expected)) < 1e-6)


_OUTPUT_LOCK = threading.Lock()


def print_json_line(obj: object, file: TextIO | None = None) -> None:
    """One JSON object as one whole line: a single write of the text and its newline, under a lock, then a flush.
    (`print()` writes the text and the newline separately, so rollouts that finish together on several threads
    could run their lines together.)"""
    line = json.dumps(obj) + "\n"
    with _OUTPUT_LOCK:
        out = sys.stdout if file is None else file
        out.write(line)
        out.flush()


def _reported(solve: Callable) -> Callable:
    """Prints one line per finished rollout: its id, the LLM calls it made and the reward it emitted."""

    def report(rollout: Rollout, reward: float) -> None:
        print_json_line({"rollout_id": rollout.rollout_id, "calls": rollout.calls, "reward": reward})

    if inspect.iscoroutinefunction(solve):
        @functools.wraps(solve)
        async def run_async(rollout: Rollout) -> float:
            reward = await solve(rollout)
            report(rollout, reward)
            return reward

        return run_async

    @functools.wraps(solve)
    def run(rollout: Rollout) -> float:
        reward = solve(rollout)
        report(rollout, reward)
        return reward

    return run


def serve(solve: Callable, description: str, default_max_turns: int = MAX_TURNS, default_max_tokens: int = MAX_TOKENS) -> None:
    """`python examples/<name>.py --target 127.0.0.1:50052 [--concurrency N] [--max-tasks N] [--max-tokens N]`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--target", default=os.environ.get("LW_AGENT_HUB", "127.0.0.1:50052"), help="the gateway's AgentHub address")
    parser.add_argument("--api-key", default=os.environ.get("LW_API_KEY", ""))
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--max-tasks", type=int, default=None, help="stop after this many rollouts (default: run until SIGTERM)")
    parser.add_argument("--task-type", default="arith", help="take only tasks of this type")
    parser.add_argument("--max-turns", type=int, default=default_max_turns)
    parser.add_argument("--max-tokens", type=int, default=default_max_tokens, help="per LLM call")
    args = parser.parse_args()
    agent = _reported(functools.partial(solve, max_turns=args.max_turns, max_tokens=args.max_tokens))
    stats = Worker(agent, WorkerConfig(target=args.target, api_key=args.api_key, concurrency=args.concurrency,
                                       max_tasks=args.max_tasks, task_types=(args.task_type,))).run_forever()
    print_json_line({"succeeded": stats.succeeded, "failed": stats.failed, "errors": stats.errors}, file=sys.stderr)

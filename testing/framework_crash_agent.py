"""A LangGraph-style agent for tests/integration/test_frameworks.py that fails mid-rollout on purpose.

Tasks whose input has {"crash": true} make two LLM calls through LangChain's `ChatOpenAI`, then their "tool"
raises; the others make the same two calls and report reward 1.0. Runs in the frameworks venv:
    python testing/framework_crash_agent.py --target HOST:PORT --api-key KEY --max-tasks N
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from langchain_core.messages import HumanMessage

from lightwire_client import Rollout, Worker, WorkerConfig
from lightwire_client.integrations import langchain_chat

# The examples' one way to print a whole JSON line from several worker threads (examples/arith_task.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from arith_task import print_json_line  # noqa: E402


class LedgerUnavailable(RuntimeError):
    """What a real tool might raise: the agent does not catch it."""


def ledger_lookup(account: str) -> str:
    raise LedgerUnavailable(f"ledger for {account!r} is down")


def solve(rollout: Rollout) -> None:
    llm = langchain_chat(rollout, max_tokens=8, max_retries=0)
    messages = [HumanMessage(rollout.input["question"])]
    for _ in range(2):
        messages.append(llm.invoke(messages))
        messages.append(HumanMessage("Go on."))
    if rollout.input.get("crash"):
        ledger_lookup("acme")
    rollout.emit_reward(1.0)
    print_json_line({"rollout_id": rollout.rollout_id, "calls": rollout.calls, "reward": 1.0})


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("--api-key", default="")
    parser.add_argument("--max-tasks", type=int, required=True)
    parser.add_argument("--task-type", default="arith")
    args, _ = parser.parse_known_args()  # the examples' other flags (--max-tokens ...) do not apply
    stats = Worker(solve, WorkerConfig(target=args.target, api_key=args.api_key, max_tasks=args.max_tasks,
                                       task_types=(args.task_type,))).run_forever()
    print_json_line({"succeeded": stats.succeeded, "failed": stats.failed, "errors": stats.errors}, file=sys.stderr)

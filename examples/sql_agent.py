"""A SQL agent written with LangGraph: questions about a company database, answered with a `run_sql` tool over
SQLite, in several turns (query, read the rows, maybe query again, answer).

A query that does not run comes back to the model as the tool's error, and is reported as a failed tool span, so
Lightwire attributes the failure to the call that wrote it. Lightwire only hands LangGraph its `ChatOpenAI`
(lightwire_client.integrations.langchain_chat) and takes the reward.
Run it against a local stack:  python examples/sql_agent.py --target 127.0.0.1:50052 --task-type sql --concurrency 4
"""

from __future__ import annotations

import sqlite3

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool

from arith_task import reward_for, serve
from langgraph_agent import build_graph
from lightwire_client import Rollout
from lightwire_client.integrations import langchain_chat
from sql_db import SCHEMA, build, run_query

SYSTEM = (
    "You answer questions about a company database with the run_sql tool (SQLite). The tables:\n"
    f"{SCHEMA}\n"
    "Call run_sql with one SELECT query. When you have its result, reply with a final line 'Answer: <number>'."
)
MAX_TURNS = 3
# A query in a tool call is 30-60 tokens.
MAX_TOKENS = 64


def _worked(question: str, query: str, rows: str, answer: str, call_id: str) -> list[AnyMessage]:
    return [
        HumanMessage(question),
        AIMessage("", tool_calls=[{"name": "run_sql", "args": {"query": query}, "id": call_id, "type": "tool_call"}]),
        ToolMessage(rows, tool_call_id=call_id),
        AIMessage(f"Answer: {answer}"),
    ]


# Two worked exchanges of the whole loop, a count and a lookup (the arithmetic agent's lesson: a small model shown the
# loop follows it; with one example of a kind the task never asks, SmolLM2-135M copied that example's query into
# nearly every answer and solved none of 120 held-out rollouts).
EXAMPLE = [
    *_worked("How many employees work in the Support department?",
             "SELECT COUNT(*) FROM employees WHERE department = 'Support'", "4", "4", "call_0"),
    *_worked("What is Rosa's age?", "SELECT age FROM employees WHERE name = 'Rosa'", "41", "41", "call_1"),
]


def sql_tool(rollout: Rollout, conn: sqlite3.Connection):
    @tool
    def run_sql(query: str) -> str:
        """Run one SQLite SELECT query on the company database and return its rows."""
        try:
            return run_query(conn, query)
        except (sqlite3.Error, sqlite3.Warning) as exc:
            # The model reads the error and may repair its query; the span tells Lightwire which call failed.
            rollout.emit_span("run_sql", kind="tool", attributes={"query": query[:500]}, error=exc)
            return f"error: {exc}"

    return run_sql


def solve(rollout: Rollout, max_turns: int = MAX_TURNS, max_tokens: int = MAX_TOKENS) -> float:
    conn = build(int(rollout.input["db_seed"]))
    try:
        temperature = float(rollout.metadata.get("temperature", "1.0"))
        model = langchain_chat(rollout, max_tokens=max_tokens, temperature=temperature, max_retries=0)
        graph = build_graph(model, [sql_tool(rollout, conn)], max_turns)
        final = graph.invoke({"messages": [SystemMessage(SYSTEM), *EXAMPLE, HumanMessage(rollout.input["question"])], "turns": 0})
    finally:
        conn.close()
    reward = reward_for(rollout, final["messages"][-1].text or "")
    rollout.emit_reward(reward)
    return reward


if __name__ == "__main__":
    serve(solve, __doc__.splitlines()[0], default_max_turns=MAX_TURNS, default_max_tokens=MAX_TOKENS)

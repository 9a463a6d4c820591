"""The demo agent: arithmetic word problems in several turns with a calculator tool, written with the plain OpenAI SDK.

Nothing here knows about Lightwire except the two lines that take the per-rollout client and report the reward.
Run it against a local stack:  python examples/arith_agent.py --target 127.0.0.1:50052 --concurrency 4
"""

from __future__ import annotations

import ast
import json
import operator
import re

from lightwire_client import Rollout

SYSTEM = (
    "You solve arithmetic word problems. Use the calculator tool for arithmetic. "
    "Show the calculation, then give the result on a final line 'Answer: <number>'."
)
# One worked example: a 135M model follows a shown format far more often than a described one.
EXAMPLE = [
    {"role": "user", "content": "Lena has 20 cards and buys 5 more. How many cards does Lena have?"},
    {"role": "assistant", "content": "20 + 5 = 25\nAnswer: 25"},
]
CALCULATOR = {
    "type": "function",
    "function": {
        "name": "calculator",
        "description": "Evaluate an arithmetic expression with + - * / and parentheses.",
        "parameters": {"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]},
    },
}
ANSWER = re.compile(r"answer\s*[:=]\s*(-?\d+(?:\.\d+)?)", re.IGNORECASE)
OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv, ast.USub: operator.neg}


def calculate(expression: str) -> float:
    """A safe evaluator: numbers and + - * / only (the model's input is never exec'd)."""

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in OPS:
            return OPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in OPS:
            return OPS[type(node.op)](ev(node.operand))
        raise ValueError(f"unsupported expression: {expression!r}")

    return ev(ast.parse(expression, mode="eval"))


def solve(rollout: Rollout, model: str = "default", max_turns: int = 3, max_tokens: int = 96) -> float:
    """One rollout: returns (and reports) 1.0 for a correct final answer, else 0.0."""
    client = rollout.openai_client()
    question = rollout.input["question"]
    temperature = float(rollout.metadata.get("temperature", "1.0"))
    messages: list[dict] = [{"role": "system", "content": SYSTEM}, *EXAMPLE, {"role": "user", "content": question}]
    text = ""
    for _ in range(max_turns):
        reply = client.chat.completions.create(
            model=model, messages=messages, tools=[CALCULATOR], temperature=temperature, max_tokens=max_tokens
        ).choices[0].message
        text = reply.content or ""
        if not reply.tool_calls:
            break
        messages.append({"role": "assistant", "content": text, "tool_calls": [c.model_dump() for c in reply.tool_calls]})
        for call in reply.tool_calls:
            try:
                result = str(calculate(json.loads(call.function.arguments)["expression"]))
            except (ValueError, KeyError, SyntaxError, ZeroDivisionError, json.JSONDecodeError) as exc:
                result = f"error: {exc}"
                rollout.emit_span("calculator", kind="tool", attributes={"arguments": call.function.arguments}, error=exc)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    match = ANSWER.search(text)
    expected = json.loads(rollout.task.reference_json)["answer"] if rollout.task.reference_json else None
    reward = float(match is not None and expected is not None and abs(float(match.group(1)) - float(expected)) < 1e-6)
    rollout.emit_reward(reward)
    return reward


def main() -> None:
    from arith_task import serve  # the examples' shared command line (run as a script, examples/ is on sys.path)

    serve(solve, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()

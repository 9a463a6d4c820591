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
    "You solve arithmetic word problems with the calculator tool: call it with the expression, "
    "then reply 'Answer: <number>' with its result."
)


def _example(question: str, expression: str, result: str, call_id: str) -> list[dict]:
    call = {"id": call_id, "type": "function", "function": {"name": "calculator", "arguments": json.dumps({"expression": expression})}}
    return [
        {"role": "user", "content": question},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call_id, "content": result},
        {"role": "assistant", "content": f"Answer: {result}"},
    ]


# Two worked examples of the whole loop: SmolLM2-135M, shown one call and its answer, called the calculator on every
# greedy held-out problem (56% correct); told in words alone, it never called it and did the arithmetic itself (12%).
EXAMPLE = [
    *_example("Lena has 20 cards and buys 5 more. How many cards does Lena have?", "20 + 5", "25", "call_0"),
    *_example("Omar buys 6 bags with 12 marbles in each bag. How many marbles does Omar buy?", "6 * 12", "72", "call_1"),
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


def solve(rollout: Rollout, model: str = "default", max_turns: int = 3, max_tokens: int = 96, worked_examples: bool = True) -> float:
    """One rollout: returns (and reports) 1.0 for a correct final answer, else 0.0. Without `worked_examples` the
    agent has its instructions alone (the starting point prompt optimisation improves on)."""
    client = rollout.openai_client()
    question = rollout.input["question"]
    temperature = float(rollout.metadata.get("temperature", "1.0"))
    messages: list[dict] = [{"role": "system", "content": SYSTEM}, *(EXAMPLE if worked_examples else ()), {"role": "user", "content": question}]
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
            # TypeError: arguments that are not an object, or an expression that is not a string.
            except (ValueError, KeyError, SyntaxError, ZeroDivisionError, TypeError) as exc:
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

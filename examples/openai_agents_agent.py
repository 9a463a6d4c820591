"""An arithmetic agent written with the OpenAI Agents SDK: an `Agent` with a calculator `function_tool`, run again
with a nudge when its output has no 'Answer:' line, for at most a few runs.

Lightwire only hands the SDK a Chat Completions model on the rollout's client (the SDK's default speaks the
Responses API) and takes the reward. Tracing is off: its exporter would send to api.openai.com.
Run it against a local stack:  python examples/openai_agents_agent.py --target 127.0.0.1:50052 --concurrency 2
"""

from __future__ import annotations

from agents import Agent, ModelSettings, Runner, function_tool, set_tracing_disabled

from arith_task import ANSWER, MAX_TOKENS, MAX_TURNS, SYSTEM, calculator, reward_for, serve
from lightwire_client import Rollout
from lightwire_client.integrations import agents_sdk_model

set_tracing_disabled(True)
calculator_tool = function_tool(calculator)


async def solve(rollout: Rollout, max_turns: int = MAX_TURNS, max_tokens: int = MAX_TOKENS) -> float:
    agent = Agent(name="arith", instructions=SYSTEM, tools=[calculator_tool], model=agents_sdk_model(rollout),
                  model_settings=ModelSettings(max_tokens=max_tokens))
    conversation: list = [{"role": "user", "content": rollout.input["question"]}]
    text = ""
    for _ in range(max_turns):
        result = await Runner.run(agent, conversation, max_turns=max_turns)
        text = str(result.final_output or "")
        if ANSWER.search(text):
            break
        conversation = result.to_input_list() + [{"role": "user", "content": "Reply with a final line 'Answer: <number>'."}]
    reward = reward_for(rollout, text)
    await rollout.aemit_reward(reward)
    return reward


if __name__ == "__main__":
    serve(solve, __doc__.splitlines()[0])

"""An arithmetic agent written with AutoGen AgentChat: an `AssistantAgent` with a calculator tool, asked again (it
keeps its conversation) when its reply has no 'Answer:' line, for at most a few turns.

Lightwire only hands AutoGen its `OpenAIChatCompletionClient` (lightwire_client.integrations.autogen_client) and
takes the reward. Run it against a local stack:  python examples/autogen_agent.py --target 127.0.0.1:50052
"""

from __future__ import annotations

import warnings

from autogen_agentchat.agents import AssistantAgent

from arith_task import ANSWER, MAX_TOKENS, MAX_TURNS, SYSTEM, calculator, reward_for, serve
from lightwire_client import Rollout
from lightwire_client.integrations import autogen_client

# AutoGen warns that "default" is not a model it knows; the gateway names whatever model it serves.
warnings.filterwarnings("ignore", message="Resolved model mismatch")


async def solve(rollout: Rollout, max_turns: int = MAX_TURNS, max_tokens: int = MAX_TOKENS) -> float:
    model = autogen_client(rollout, max_tokens=max_tokens, max_retries=0)
    agent = AssistantAgent("arith", model_client=model, tools=[calculator], system_message=SYSTEM, reflect_on_tool_use=True)
    prompt, text = rollout.input["question"], ""
    try:
        for _ in range(max_turns):
            result = await agent.run(task=prompt)
            text = str(result.messages[-1].to_text()) if result.messages else ""
            if ANSWER.search(text):
                break
            prompt = "Reply with a final line 'Answer: <number>'."
    finally:
        await model.close()
    reward = reward_for(rollout, text)
    await rollout.aemit_reward(reward)
    return reward


if __name__ == "__main__":
    serve(solve, __doc__.splitlines()[0])

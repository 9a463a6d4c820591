"""An arithmetic crew written with CrewAI: a solver agent with a calculator tool and a reviewer that states the
final 'Answer:' line, two sequential tasks, each agent bounded to a few iterations.

Lightwire only hands CrewAI its `LLM` (lightwire_client.integrations.crewai_llm) and takes the reward. CrewAI has
its own virtualenv (requirements/frameworks-crewai.lock: it needs openai<3). Telemetry is off.
Run it against a local stack:  python examples/crewai_agent.py --target 127.0.0.1:50052 --concurrency 1
"""

from __future__ import annotations

import os

os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
os.environ.setdefault("OTEL_SDK_DISABLED", "true")

from crewai import Agent, Crew, Process, Task  # noqa: E402
from crewai.tools import tool  # noqa: E402

from arith_task import MAX_TOKENS, MAX_TURNS, SYSTEM, calculator, reward_for, serve  # noqa: E402
from lightwire_client import Rollout  # noqa: E402
from lightwire_client.integrations import crewai_llm  # noqa: E402

calculator_tool = tool("calculator")(calculator)


def solve(rollout: Rollout, max_turns: int = MAX_TURNS, max_tokens: int = MAX_TOKENS) -> float:
    llm = crewai_llm(rollout, max_tokens=max_tokens, max_retries=0)
    solver = Agent(role="solver", goal="Solve the arithmetic word problem with the calculator.", backstory=SYSTEM,
                   tools=[calculator_tool], llm=llm, max_iter=max_turns, allow_delegation=False, verbose=False)
    reviewer = Agent(role="reviewer", goal="Check the solver's working and state the result.", backstory=SYSTEM,
                     llm=llm, max_iter=max_turns, allow_delegation=False, verbose=False)
    solve_task = Task(description=rollout.input["question"], expected_output="The working and the result.", agent=solver)
    review_task = Task(description="Check the working above and state the result.",
                       expected_output="A final line 'Answer: <number>'.", agent=reviewer, context=[solve_task])
    crew = Crew(agents=[solver, reviewer], tasks=[solve_task, review_task], process=Process.sequential, verbose=False)
    reward = reward_for(rollout, str(crew.kickoff().raw))
    rollout.emit_reward(reward)
    return reward


if __name__ == "__main__":
    serve(solve, __doc__.splitlines()[0])

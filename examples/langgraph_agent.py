"""An arithmetic agent written with LangGraph: a model node bound to a calculator tool, a tool node, and a nudge
when a turn ends without an 'Answer:' line, for at most a few turns.

Lightwire only hands LangGraph its `ChatOpenAI` (lightwire_client.integrations.langchain_chat) and takes the reward.
Run it against a local stack:  python examples/langgraph_agent.py --target 127.0.0.1:50052 --concurrency 2
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, SystemMessage
from langchain_core.tools import BaseTool, tool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode

from arith_task import ANSWER, MAX_TOKENS, MAX_TURNS, SYSTEM, calculator, reward_for, serve
from lightwire_client import Rollout
from lightwire_client.integrations import langchain_chat

calculator_tool = tool(calculator)


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    turns: int


def build_graph(model, tools: Sequence[BaseTool] = (calculator_tool,), max_turns: int = MAX_TURNS):
    """The loop every LangGraph example here runs: the model with its tools, the tool node, a nudge towards an
    'Answer:' line, for at most max_turns model calls."""
    llm = model.bind_tools(list(tools))

    def agent(state: State) -> dict:
        return {"messages": [llm.invoke(state["messages"])], "turns": state["turns"] + 1}

    def nudge(state: State) -> dict:
        return {"messages": [HumanMessage("Reply with a final line 'Answer: <number>'.")]}

    def route(state: State) -> str:
        last = state["messages"][-1]
        if state["turns"] >= max_turns:
            return END
        if isinstance(last, AIMessage) and last.tool_calls:
            return "tools"
        return END if ANSWER.search(last.text or "") else "nudge"

    graph = StateGraph(State)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode(list(tools)))
    graph.add_node("nudge", nudge)
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", route, ["tools", "nudge", END])
    graph.add_edge("tools", "agent")
    graph.add_edge("nudge", "agent")
    return graph.compile()


def solve(rollout: Rollout, max_turns: int = MAX_TURNS, max_tokens: int = MAX_TOKENS) -> float:
    graph = build_graph(langchain_chat(rollout, max_tokens=max_tokens, max_retries=0), max_turns=max_turns)
    final = graph.invoke({"messages": [SystemMessage(SYSTEM), HumanMessage(rollout.input["question"])], "turns": 0})
    reward = reward_for(rollout, final["messages"][-1].text or "")
    rollout.emit_reward(reward)
    return reward


if __name__ == "__main__":
    serve(solve, __doc__.splitlines()[0])

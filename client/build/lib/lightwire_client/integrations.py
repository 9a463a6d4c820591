"""Hand each framework its per-rollout client without touching agent logic. Each imports its framework lazily."""

from __future__ import annotations

from typing import Any

from lightwire_client.context import Rollout


def openai_client(rollout: Rollout, **kwargs: Any):
    return rollout.openai_client(**kwargs)


def async_openai_client(rollout: Rollout, **kwargs: Any):
    return rollout.async_openai_client(**kwargs)


def langchain_chat(rollout: Rollout, model: str, **kwargs: Any):
    """LangChain / LangGraph: a `ChatOpenAI` whose calls go to this rollout."""
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(model=model, base_url=rollout.base_url, api_key=rollout.api_key,
                      http_client=rollout.http_client(), http_async_client=rollout.async_http_client(), **kwargs)


def agents_sdk_model(rollout: Rollout, model: str):
    """OpenAI Agents SDK: a chat-completions model on this rollout's client (the gateway speaks chat completions)."""
    from agents import OpenAIChatCompletionsModel

    return OpenAIChatCompletionsModel(model=model, openai_client=rollout.async_openai_client())


def autogen_client(rollout: Rollout, model: str, **kwargs: Any):
    """AutoGen AgentChat: an `OpenAIChatCompletionClient` pointed at this rollout."""
    from autogen_ext.models.openai import OpenAIChatCompletionClient

    info = kwargs.pop("model_info", {"vision": False, "function_calling": True, "json_output": False, "family": "unknown",
                                     "structured_output": False})
    return OpenAIChatCompletionClient(model=model, base_url=rollout.base_url, api_key=rollout.api_key, model_info=info, **kwargs)


def crewai_llm(rollout: Rollout, model: str, **kwargs: Any):
    """CrewAI: an `LLM` on the OpenAI-compatible provider at this rollout's URL."""
    from crewai import LLM

    return LLM(model=f"openai/{model}", base_url=rollout.base_url, api_key=rollout.api_key, **kwargs)

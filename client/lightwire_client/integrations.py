"""Hand each framework its per-rollout client without touching agent logic.

Each helper imports its framework when called, never at module import: the client stays free of ML and framework
dependencies. Every client made here counts the rollout's LLM calls, so the Worker can declare them at finish.

| framework | helper |
|---|---|
| OpenAI SDK | `openai_client`, `async_openai_client` |
| LangChain, LangGraph | `langchain_chat` (a `ChatOpenAI`) |
| OpenAI Agents SDK | `agents_sdk_model` (an `OpenAIChatCompletionsModel`) |
| AutoGen AgentChat | `autogen_client` (an `OpenAIChatCompletionClient`) |
| CrewAI | `crewai_llm` (an `LLM` on its native OpenAI provider) |
"""

from __future__ import annotations

from typing import Any

from lightwire_client.context import Rollout


def openai_client(rollout: Rollout, **kwargs: Any):
    return rollout.openai_client(**kwargs)


def async_openai_client(rollout: Rollout, **kwargs: Any):
    return rollout.async_openai_client(**kwargs)


def langchain_chat(rollout: Rollout, model: str = "default", **kwargs: Any):
    """LangChain / LangGraph: a `ChatOpenAI` whose calls (sync and async) go to this rollout."""
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(model=model, base_url=rollout.base_url, api_key=rollout.api_key,
                      http_client=rollout.http_client(), http_async_client=rollout.async_http_client(), **kwargs)


def agents_sdk_model(rollout: Rollout, model: str = "default"):
    """OpenAI Agents SDK: a Chat Completions model on this rollout's client.

    The SDK's default model speaks the Responses API, which the gateway does not serve; pass this as the
    `Agent(model=...)`. Its tracing exporter sends to api.openai.com: set OPENAI_AGENTS_DISABLE_TRACING=1 (or call
    `agents.set_tracing_disabled(True)`).
    """
    from agents import OpenAIChatCompletionsModel

    return OpenAIChatCompletionsModel(model=model, openai_client=rollout.async_openai_client())


# AutoGen needs to be told what an unknown model can do; the gateway serves function calling for every model.
AUTOGEN_MODEL_INFO = {"vision": False, "function_calling": True, "json_output": False, "family": "unknown", "structured_output": False}


def autogen_client(rollout: Rollout, model: str = "default", **kwargs: Any):
    """AutoGen AgentChat: an `OpenAIChatCompletionClient` pointed at this rollout."""
    from autogen_ext.models.openai import OpenAIChatCompletionClient

    kwargs.setdefault("model_info", AUTOGEN_MODEL_INFO)
    return OpenAIChatCompletionClient(model=model, base_url=rollout.base_url, api_key=rollout.api_key,
                                      http_client=rollout.async_http_client(), **kwargs)


def crewai_llm(rollout: Rollout, model: str = "default", **kwargs: Any):
    """CrewAI: an `LLM` on CrewAI's native OpenAI provider at this rollout's URL.

    CrewAI builds its own sync and async OpenAI clients, so calls are counted by a transport interceptor (its
    public hook) rather than a client we hand it. Set CREWAI_DISABLE_TELEMETRY=1 and OTEL_SDK_DISABLED=true to
    keep it off the network.
    """
    from crewai import LLM

    return LLM(model=f"openai/{model}", base_url=rollout.base_url, api_key=rollout.api_key,
               interceptor=_crewai_call_counter(rollout), **kwargs)


def _crewai_call_counter(rollout: Rollout):
    from crewai.llms.hooks.base import BaseInterceptor

    class CallCounter(BaseInterceptor):
        def on_outbound(self, message):
            rollout.count_call(message)
            return message

        def on_inbound(self, message):
            return message

        async def aon_outbound(self, message):
            return self.on_outbound(message)

        async def aon_inbound(self, message):
            return message

    return CallCounter()

"""The framework helpers: importing them pulls in no framework, and the clients they make count the rollout's calls."""

from __future__ import annotations

import subprocess
import sys

import httpx

from lightwire_client.context import Rollout

FRAMEWORKS = ("openai", "langchain_openai", "langgraph", "agents", "autogen_agentchat", "autogen_ext", "crewai", "torch", "transformers")


def test_importing_the_client_and_its_helpers_imports_no_framework():
    code = ("import sys, lightwire_client, lightwire_client.integrations; "
            f"print(sorted(m for m in {FRAMEWORKS!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def rollout() -> Rollout:
    return Rollout(rollout_id="r-1", task=None, base_url="http://gw/rollouts/r-1/v1", api_key="k", hub=None, loop=None)


def test_only_llm_calls_are_counted_and_a_rollout_without_counted_clients_declares_none():
    r = rollout()
    assert r.declared_calls() == 0  # the gateway's own count then
    for method, path in [("POST", "/rollouts/r-1/v1/chat/completions"), ("POST", "/rollouts/r-1/v1/completions"),
                         ("GET", "/rollouts/r-1/v1/models"), ("POST", "/rollouts/r-1/v1/embeddings")]:
        r.count_call(httpx.Request(method, f"http://gw{path}"))
    assert r.calls == r.declared_calls() == 2


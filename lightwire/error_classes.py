"""The error taxonomy: the classes a failure is attributed to. The gateway stamps some of them on calls, the agent
client on spans, the attributors on rollouts; analytics and rewards group by them. One list, owned here."""

from __future__ import annotations

import re

UPSTREAM_ERROR = "upstream_error"
TIMEOUT = "timeout"
TOOL_EXCEPTION = "tool_exception"
INVALID_TOOL_JSON = "invalid_tool_json"
CODE_SYNTAX_ERROR = "code_syntax_error"
LOOP = "loop"
CONTEXT_OVERFLOW = "context_overflow"
AGENT_CRASH = "agent_crash"
TAXONOMY = (UPSTREAM_ERROR, TIMEOUT, TOOL_EXCEPTION, INVALID_TOOL_JSON, CODE_SYNTAX_ERROR, LOOP, CONTEXT_OVERFLOW, AGENT_CRASH)

# How servers word a prompt that does not fit (vLLM, OpenAI, llama.cpp, our own engines).
CONTEXT_OVERFLOW_WORDS = re.compile(r"context (length|window)|too long|maximum context|too many tokens", re.IGNORECASE)

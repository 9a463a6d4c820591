"""Between the Inference protos and the engine's typed objects: validation happens here, once.

Proto3 has no "unset" for scalars, so zeros mean defaults: top_p 0 -> 1.0, n 0 -> 1, max_tokens 0 -> the
service default. temperature 0 is greedy (callers forwarding an OpenAI request without temperature send 1.0).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from lightwire.v1 import events_pb2, inference_pb2
from lightwire.services.inference.chat import ChatTurn, parse_completion, parse_tool_calls_json, parse_tools_json, render_prompt
from lightwire.services.inference.engine import GenerationRequest, GenerationResult, InferenceError, SamplingOptions

_ROLES = {"system", "user", "assistant", "tool", "developer"}


@dataclass(frozen=True)
class PreparedRequest:
    request: GenerationRequest
    tools_offered: bool


def chat_turns(messages) -> list[ChatTurn]:
    turns = []
    for i, m in enumerate(messages):
        if m.role not in _ROLES:
            raise InferenceError(f"messages[{i}].role {m.role!r} is not one of {sorted(_ROLES)}")
        # "developer" is OpenAI's newer name for the system role; templates know "system".
        role = "system" if m.role == "developer" else m.role
        turns.append(ChatTurn(role, m.content, m.name, parse_tool_calls_json(m.tool_calls_json), m.tool_call_id))
    return turns


def prompt_ids(tokenizer: Any, *, messages, prompt: str, token_ids, tools_json: str, tool_choice: str = "") -> tuple[list[int], bool]:
    """The prompt token ids from exactly one of messages, prompt text or token ids; and whether tools were offered."""
    given = [name for name, value in (("messages", messages), ("prompt", prompt), ("prompt_token_ids", token_ids)) if value]
    if len(given) != 1:
        raise InferenceError(f"give exactly one of messages, prompt or prompt_token_ids (got {given or 'none'})")
    tools = parse_tools_json(tools_json)
    if tool_choice == "none":
        tools = None
    if messages:
        return render_prompt(tokenizer, chat_turns(messages), tools), bool(tools)
    if tools:
        raise InferenceError("tools need chat messages (the template renders them)")
    if prompt:
        return list(tokenizer.encode(prompt, add_special_tokens=False)), False
    vocab = len(tokenizer)
    bad = [t for t in token_ids if not 0 <= t < vocab]
    if bad:
        raise InferenceError(f"prompt_token_ids out of the vocabulary (size {vocab}): {bad[:5]}")
    return list(token_ids), False


def sampling_options(pb: inference_pb2.SamplingParams, default_max_tokens: int) -> SamplingOptions:
    return SamplingOptions(
        temperature=pb.temperature,
        top_p=pb.top_p or 1.0,
        max_tokens=pb.max_tokens or default_max_tokens,
        stop=tuple(pb.stop),
        n=pb.n or 1,
        seed=pb.seed if (pb.has_seed or pb.seed) else None,
    )


def prepare(tokenizer: Any, pb: inference_pb2.GenerateRequest, default_max_tokens: int) -> PreparedRequest:
    ids, tools_offered = prompt_ids(
        tokenizer, messages=pb.messages, prompt=pb.prompt, token_ids=pb.prompt_token_ids, tools_json=pb.tools_json, tool_choice=pb.tool_choice
    )
    request = GenerationRequest(tuple(ids), sampling_options(pb.sampling, default_max_tokens), pb.request_id)
    return PreparedRequest(request, tools_offered)


def response(result: GenerationResult, prepared: PreparedRequest) -> inference_pb2.GenerateResponse:
    out = inference_pb2.GenerateResponse(model=result.model, model_version=result.model_version, prompt_token_ids=result.prompt_token_ids)
    for c in result.completions:
        # Deterministic ids when the caller names its request: a replayed call yields the same tool-call ids.
        id_prefix = f"{prepared.request.request_id}_{c.index}" if prepared.request.request_id else ""
        parsed = parse_completion(c.text, tools_offered=prepared.tools_offered, id_prefix=id_prefix)
        out.completions.append(
            events_pb2.Completion(
                index=c.index,
                text=parsed.content,
                token_ids=c.token_ids,
                logprobs=c.logprobs,
                finish_reason="tool_calls" if parsed.tool_calls else c.finish_reason,
                tool_calls_json=json.dumps(parsed.tool_calls) if parsed.tool_calls else "",
                tool_call_parse_error=parsed.parse_error,
            )
        )
    return out

"""OpenAI wire models the gateway accepts (the subset agents use), validated once at the boundary.

Unknown fields are ignored, as OpenAI-compatible servers do; fields we cannot honour are rejected with a 400
that names them, rather than silently changing what the agent asked for.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lightwire.services.gateway import errors

# The integer ranges of the Inference contract's fields (proto/lightwire/v1/inference.proto): a number outside them
# cannot be put on the wire, so it is the caller's mistake (a 400 naming the field), never a 500.
INT32_MAX = 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None

    @field_validator("content")
    @classmethod
    def _text_parts_only(cls, value):
        if isinstance(value, list):
            for part in value:
                if part.get("type") not in ("text", "input_text") or not isinstance(part.get("text"), str):
                    raise ValueError("only text content parts are supported")
        return value

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part["text"] for part in self.content)
        return self.content or ""


class StreamOptions(BaseModel):
    include_usage: bool = False


class SamplingFields(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str = Field(min_length=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1, le=INT32_MAX)
    n: int = Field(1, ge=1, le=16)
    stop: list[str] | None = Field(None, max_length=4)
    seed: int | None = Field(None, ge=INT64_MIN, le=INT64_MAX)
    stream: bool = False
    stream_options: StreamOptions | None = None
    # Engine-only fields come back only when asked for (vLLM's spelling).
    return_token_ids: bool = False

    @field_validator("stop", mode="before")
    @classmethod
    def _stops(cls, value):
        return [value] if isinstance(value, str) else value

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatCompletionRequest(SamplingFields):
    messages: list[ChatMessage] = Field(min_length=1)
    tools: list[dict[str, Any]] | None = None
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    max_completion_tokens: int | None = Field(None, ge=1, le=INT32_MAX)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=0, description="Only the sampled token's logprob is recorded.")

    @field_validator("tools")
    @classmethod
    def _function_tools(cls, value):
        for i, tool in enumerate(value or ()):
            if tool.get("type", "function") != "function" or not isinstance(tool.get("function"), dict) or not tool["function"].get("name"):
                raise ValueError(f"tools[{i}] must be {{'type': 'function', 'function': {{'name': ...}}}}")
        return value

    @property
    def wants_engine_fields(self) -> bool:
        return self.logprobs or self.return_token_ids


class CompletionRequest(SamplingFields):
    prompt: str | list[int] | list[str] = Field(min_length=1)
    max_tokens: int | None = Field(16, ge=1, le=INT32_MAX)
    logprobs: int | None = Field(None, ge=0, le=0, description="Only the sampled token's logprob is recorded.")
    echo: Literal[False] = False
    best_of: int | None = Field(None, ge=1, le=1)
    suffix: None = None

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, value):
        if isinstance(value, list) and value and isinstance(value[0], str):
            if len(value) != 1:
                raise ValueError("batched prompts are not supported: send one prompt per request")
            return value[0]
        if isinstance(value, list) and not all(0 <= t <= INT32_MAX for t in value):
            raise ValueError(f"prompt token ids must be integers from 0 to {INT32_MAX}")
        return value

    @property
    def wants_engine_fields(self) -> bool:
        return self.logprobs is not None or self.return_token_ids


def parse(model_cls: type[SamplingFields], raw: bytes) -> SamplingFields:
    """The request body as a typed model, or a GatewayError saying which field is wrong and why."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.invalid(f"We could not parse the JSON body of your request: {exc}") from None
    if not isinstance(doc, dict):
        raise errors.invalid("The request body must be a JSON object.")
    try:
        return model_cls.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        message = first["msg"] if first["type"] != "missing" else "Field required"
        raise errors.invalid(f"Invalid value for `{param}`: {message}", param=param) from None

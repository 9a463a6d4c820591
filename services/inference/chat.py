"""Chat prompts and tool calls: the chat template is applied here, once, so the prompt token ids a call records
are exactly the tokens the model saw.

SmolLM2's chat template has no tools support. When a model's template does not mention `tools`, OpenAI tools are
rendered into the system prompt in SmolLM2's function-calling format (the prompt of its training data):
tools as JSON inside <tools>...</tools>, calls answered as `<tool_call>[{"name": ..., "arguments": {...}}]</tool_call>`.
Templates that do support tools (Qwen, Llama 3.x, ...) get `tools=` and render them their own way; the parser
reads both <tool_call> blocks holding one object (Hermes/Qwen style) and a list of objects (SmolLM2 style).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lightwire.services.inference.engine import InferenceError

TOOLS_SYSTEM_PROMPT = """You are an expert in composing functions. You are given a question and a set of possible functions.
Based on the question, you will need to make one or more function/tool calls to achieve the purpose.
If none of the functions can be used, point it out and refuse to answer.
If the given question lacks the parameters required by the function, also point it out.

You have access to the following tools:
<tools>{tools}</tools>

The output MUST strictly adhere to the following format, and NO other text MUST be included.
The example format is as follows. Please make sure the parameter type is correct. If no function call is needed, please make the tool calls an empty list '[]'.
<tool_call>[
{{"name": "func_name1", "arguments": {{"argument1": "value1", "argument2": "value2"}}}},
... (more tool calls as required)
]</tool_call>"""

_TOOL_CALL_BLOCK = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.DOTALL)


@dataclass(frozen=True)
class ChatTurn:
    """One message, validated at the boundary; `tool_calls` are OpenAI tool-call dicts."""

    role: str
    content: str = ""
    name: str = ""
    tool_calls: tuple[dict, ...] = ()
    tool_call_id: str = ""


@dataclass
class ParsedCompletion:
    """What the model's text means: plain content, tool calls, or a failed attempt at tool calls."""

    content: str
    tool_calls: list[dict] = field(default_factory=list)
    parse_error: bool = False


def parse_tools_json(tools_json: str) -> list[dict] | None:
    if not tools_json:
        return None
    try:
        tools = json.loads(tools_json)
    except json.JSONDecodeError as exc:
        raise InferenceError(f"tools_json is not JSON: {exc}") from None
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        raise InferenceError("tools_json must be a JSON list of OpenAI tool objects")
    for tool in tools:
        fn = tool.get("function")
        if tool.get("type", "function") != "function" or not isinstance(fn, dict) or not fn.get("name"):
            raise InferenceError("every tool needs type 'function' and a function with a name")
    return tools or None


def parse_tool_calls_json(text: str) -> tuple[dict, ...]:
    if not text:
        return ()
    try:
        calls = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InferenceError(f"tool_calls_json is not JSON: {exc}") from None
    if not isinstance(calls, list) or not all(isinstance(c, dict) for c in calls):
        raise InferenceError("tool_calls_json must be a JSON list of OpenAI tool calls")
    return tuple(calls)


def template_supports_tools(tokenizer: Any) -> bool:
    template = getattr(tokenizer, "chat_template", None) or ""
    return "tools" in template


def render_prompt(tokenizer: Any, turns: Sequence[ChatTurn], tools: list[dict] | None) -> list[int]:
    """The prompt token ids of a chat, ending with the assistant's generation prompt."""
    if not turns:
        raise InferenceError("messages must not be empty")
    native = template_supports_tools(tokenizer)
    messages = [_template_message(t, native) for t in turns]
    if tools and not native:
        messages = _with_tools_system_prompt(messages, tools)
    kwargs: dict[str, Any] = {"tools": tools} if (tools and native) else {}
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False, **kwargs)
    return list(ids)


def render_tool_calls(calls: Sequence[dict]) -> str:
    """An assistant turn's OpenAI tool calls, written back the way the model emits them."""
    items = []
    for call in calls:
        fn = call.get("function", {})
        args = fn.get("arguments", "{}")
        try:
            args = json.loads(args) if isinstance(args, str) else args
        except json.JSONDecodeError:
            pass  # keep the agent's text as it was; the model sees what was sent
        items.append({"name": fn.get("name", ""), "arguments": args})
    return f"<tool_call>{json.dumps(items, ensure_ascii=False)}</tool_call>"


def _template_message(turn: ChatTurn, native_tools: bool) -> dict:
    message: dict[str, Any] = {"role": turn.role, "content": turn.content}
    if turn.name:
        message["name"] = turn.name
    if turn.tool_call_id:
        message["tool_call_id"] = turn.tool_call_id
    if turn.tool_calls:
        if native_tools:
            message["tool_calls"] = [_with_parsed_arguments(c) for c in turn.tool_calls]
        else:
            message["content"] = (turn.content + "\n" if turn.content else "") + render_tool_calls(turn.tool_calls)
    return message


def _with_parsed_arguments(call: dict) -> dict:
    # Native templates (Qwen, Llama) expect arguments as a mapping, OpenAI sends a JSON string.
    fn = dict(call.get("function", {}))
    if isinstance(fn.get("arguments"), str):
        try:
            fn["arguments"] = json.loads(fn["arguments"])
        except json.JSONDecodeError:
            pass
    return {**call, "function": fn}


def _with_tools_system_prompt(messages: list[dict], tools: list[dict]) -> list[dict]:
    rendered = json.dumps([t["function"] for t in tools], ensure_ascii=False)
    prompt = TOOLS_SYSTEM_PROMPT.format(tools=rendered)
    if messages[0]["role"] == "system":
        first = dict(messages[0])
        first["content"] = f"{first['content']}\n\n{prompt}" if first["content"] else prompt
        return [first, *messages[1:]]
    return [{"role": "system", "content": prompt}, *messages]


def parse_completion(text: str, *, tools_offered: bool, id_prefix: str = "") -> ParsedCompletion:
    """Split a completion into content and OpenAI tool calls. Without tools offered, text is always content.

    Accepted: <tool_call>...</tool_call> blocks holding one call object or a list of them, or (no tags) a text that
    is only a JSON call object or list of them. Anything tagged that does not parse is a parse error: the raw
    text stays the content and no call is returned.
    """
    if not tools_offered:
        return ParsedCompletion(text)
    blocks = _TOOL_CALL_BLOCK.findall(text)
    if blocks:
        payloads = blocks
        rest = _TOOL_CALL_BLOCK.sub("", text).strip()
    elif text.strip()[:1] in ("[", "{") and _looks_like_call(text):
        payloads, rest = [text], ""
    else:
        return ParsedCompletion(text)
    calls: list[dict] = []
    for payload in payloads:
        parsed = _calls_from_payload(payload)
        if parsed is None:
            return ParsedCompletion(text, parse_error=True)
        calls.extend(parsed)
    prefix = id_prefix or uuid.uuid4().hex[:12]
    tool_calls = [
        {"id": f"call_{prefix}_{i}", "type": "function", "function": {"name": name, "arguments": json.dumps(args, ensure_ascii=False)}}
        for i, (name, args) in enumerate(calls)
    ]
    # `<tool_call>[]</tool_call>` is the model saying "no call needed": no calls, and only the text around it.
    return ParsedCompletion(rest, tool_calls)


def _looks_like_call(text: str) -> bool:
    return '"name"' in text


def _calls_from_payload(payload: str) -> list[tuple[str, dict]] | None:
    try:
        doc = json.loads(payload.strip())
    except json.JSONDecodeError:
        return None
    items = doc if isinstance(doc, list) else [doc]
    calls = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
            return None
        args = item.get("arguments", item.get("parameters", {}))
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except json.JSONDecodeError:
                return None
        if not isinstance(args, dict):
            return None
        calls.append((item["name"], args))
    return calls

"""One rollout as a person reads it: its events in sequence order, each call's messages and scored tokens.

Steps are numbered as the collector numbers them (calls by start time, then seq: 1..n), so an error attributed to
step k sits right after call k, a span after the call it followed (`after_seq`), and late rewards after the finish.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

MAX_MESSAGES = 200
MAX_CHARS = 8000

# (model, token ids) -> the text of each token, or None when no tokenizer is at hand.
Decode = Callable[[str, list[int]], "list[str] | None"]


def _clip(text: Any) -> str:
    if not isinstance(text, str):
        text = "" if text is None else json.dumps(text, ensure_ascii=False)
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS] + f"… ({len(text) - MAX_CHARS} more characters)"


def _content(value: Any) -> str:
    """OpenAI content: a string or a list of parts; the text parts, joined."""
    if isinstance(value, list):
        return "\n".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in value)
    return _clip(value)


def _message(m: Any) -> dict[str, Any]:
    if not isinstance(m, dict):
        return {"role": "?", "content": _clip(m)}
    out = {"role": str(m.get("role", "?")), "content": _clip(_content(m.get("content")))}
    if m.get("tool_calls"):
        out["tool_calls"] = _clip(m["tool_calls"])
    if m.get("tool_call_id"):
        out["tool_call_id"] = str(m["tool_call_id"])
    return out


def _json(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def request_messages(request_json: str) -> list[dict[str, Any]]:
    request = _json(request_json)
    if not isinstance(request, dict):
        return [{"role": "request", "content": _clip(request_json)}] if request_json else []
    if isinstance(request.get("messages"), list):
        return [_message(m) for m in request["messages"][:MAX_MESSAGES]]
    if "prompt" in request:
        return [{"role": "prompt", "content": _clip(request["prompt"])}]
    return []


def replies(response_json: str) -> list[dict[str, Any]]:
    """Each choice's reply as the client got it (text, tool calls)."""
    response = _json(response_json)
    choices = response.get("choices") if isinstance(response, dict) else None
    out = []
    for choice in choices if isinstance(choices, list) else ():
        if not isinstance(choice, dict):
            continue
        message = choice.get("message") if isinstance(choice.get("message"), dict) else {"content": choice.get("text")}
        out.append({**_message({"role": "assistant", **message}), "finish_reason": choice.get("finish_reason")})
    return out


def scored_tokens(model: str, ids: list[int], logprobs: list[float], decode: Decode) -> list[dict[str, Any]]:
    texts = decode(model, ids) if ids else []
    return [{"id": i, "text": texts[k] if texts else None, "logprob": logprobs[k] if k < len(logprobs) else None,
             "p": math.exp(logprobs[k]) if k < len(logprobs) and math.isfinite(logprobs[k]) else None}
            for k, i in enumerate(ids)]


def _shared_prefix(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> int:
    n = 0
    for x, y in zip(a, b):
        if (x.get("role"), x.get("content")) != (y.get("role"), y.get("content")):
            break
        n += 1
    return n


def calls_view(calls: list[dict[str, Any]], decode: Decode) -> list[dict[str, Any]]:
    """Calls numbered 1..n in rollout order; `earlier` counts the leading messages the previous call already showed."""
    out = []
    before: list[dict[str, Any]] = []
    for step, call in enumerate(calls, 1):
        messages = request_messages(call.get("request_json", ""))
        got = replies(call.get("response_json", ""))
        ids, lps = call.get("completion_token_ids") or [], call.get("completion_logprobs") or []
        completions = [{"index": k, "tokens": scored_tokens(call["model"], list(t), list(lps[k]) if k < len(lps) else [], decode),
                        "reply": got[k] if k < len(got) else None} for k, t in enumerate(ids)]
        if not completions and got:
            completions = [{"index": k, "tokens": [], "reply": r} for k, r in enumerate(got)]
        out.append({"step": step, **{k: call.get(k) for k in ("call_id", "seq", "model", "model_version", "agent_name", "endpoint",
                                                            "prompt_tokens", "completion_tokens", "latency_ms", "http_status",
                                                            "error_class", "finish_reason", "started_ms", "prompt_version")},
                    "messages": messages, "earlier": _shared_prefix(before, messages), "completions": completions})
        before = messages + [r for r in got[:1]]
    return out


def timeline(calls: list[dict[str, Any]], spans: list[dict[str, Any]], rewards: list[dict[str, Any]],
             errors: list[dict[str, Any]], rollout: dict[str, Any] | None, start: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every event of the rollout as (step, kind, ...) in the order a person should read them."""
    step_of_seq = {c["seq"]: c["step"] for c in calls}
    step_of_call = {c["call_id"]: c["step"] for c in calls}
    last = len(calls)
    entries: list[tuple[tuple, dict[str, Any]]] = []
    if start:
        entries.append(((0, 0), {"kind": "start", "step": 0, "at_ms": start.get("started_ms"), "worker": start.get("worker_id")}))
    for c in calls:
        entries.append(((c["step"], 1), {"kind": "call", "step": c["step"], "call_id": c["call_id"], "version": c["model_version"]}))
    for s in spans:
        step = step_of_seq.get(s["after_seq"], min(int(s["after_seq"] or 0), last))
        # The span's own kind (tool, agent, step, error) as span_kind: "kind" names the timeline entry.
        fields = {k: v for k, v in s.items() if k != "kind"}
        entries.append(((step, 2, s.get("started_ms") or 0), {**fields, "kind": "span", "span_kind": s.get("kind"), "step": step}))
    for e in errors:
        entries.append(((int(e["step"]), 3), {"kind": "error", **e}))
    for r in rewards:
        if r.get("late"):
            entries.append(((last + 1, 1, r.get("created_ms") or 0), {"kind": "late_reward", "step": None, **r}))
            continue
        step = step_of_call.get(r.get("call_id") or "", last)
        entries.append(((step, 4), {"kind": "reward", "step": step, **r}))
    if rollout:
        entries.append(((last + 1, 0), {"kind": "finish", "step": None, "status": rollout["status"], "reward": rollout["reward"],
                                        "at_ms": rollout.get("finished_ms")}))
    return [entry for _, entry in sorted(entries, key=lambda pair: pair[0])]


def mask_runs(mask: list[int]) -> list[list[int]]:
    """[[value, length], ...]: a response mask as runs (sampled tokens 1, observations 0)."""
    runs: list[list[int]] = []
    for m in mask:
        if runs and runs[-1][0] == m:
            runs[-1][1] += 1
        else:
            runs.append([int(m), 1])
    return runs


def transitions_view(row: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not row:
        return []
    out = []
    for i, mask in enumerate(row["response_masks"]):
        sampled = sum(mask)
        out.append({"index": i, "call_id": row["call_ids"][i], "seq": row["seqs"][i], "merged_calls": row["merged_calls"][i],
                    "prompt_tokens": row["prompt_tokens"][i], "response_tokens": len(mask), "sampled": sampled,
                    "observed": len(mask) - sampled, "runs": mask_runs(mask), "reward": row["rewards"][i],
                    "version": row["model_versions"][i]})
    return out


def rollout_page(found: dict[str, list[dict[str, Any]]], decode: Decode) -> dict[str, Any]:
    """The One rollout view from the read API's answer for one rollout id."""
    rollout = (found.get("rollout") or [None])[0]
    start = (found.get("start") or [None])[0]
    calls = calls_view(found.get("calls") or [], decode)
    return {
        "rollout": rollout, "start": start, "calls": calls,
        "timeline": timeline(calls, found.get("spans") or [], found.get("rewards") or [], found.get("errors") or [], rollout, start),
        "transitions": transitions_view((found.get("transitions") or [None])[0]),
        "batch": found.get("batch") or [], "group": found.get("group") or [], "errors": found.get("errors") or [],
    }

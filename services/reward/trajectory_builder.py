"""Transitions from a rollout's LLM calls, on the exact token ids the gateway captured (never re-tokenized).

One transition per call: prompt = the call's prompt token ids, response = the token ids of completion 0, mask 1,
the behaviour logprobs recorded at sampling. With merging on, a call whose prompt extends the previous transition's
prompt+response exactly joins it: the tokens in between (tool results, new user turns) are appended as observations
with mask 0 and logprob 0. A call that does not extend it starts a new transition and is counted as a mismatch, so
a chat template that rewrites history shows up in the numbers instead of silently training on the wrong context.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lightwire.v1 import events_pb2
from services.reward.credit import selected
from services.reward.rollout_view import first_completion


@dataclass
class BuiltTransitions:
    transitions: list[events_pb2.Transition]
    # Calls (same agent, merging on) whose prompt did not extend the previous prompt+response.
    mismatches: int
    # The call ids in each transition, in order (per-step rewards of merged calls are summed over them).
    call_ids: list[list[str]]
    # Calls with tokens but without one logprob per token: their behaviour logprobs are 0 (ratio will be off).
    missing_logprobs: int = 0
    # Calls that produced no completion tokens (failed calls): nothing to train on.
    skipped: int = 0


def build(calls: Sequence[events_pb2.LlmCall], merge: bool = True, train_agents: Iterable[str] = ()) -> BuiltTransitions:
    """The transitions of one rollout; `train_agents` (names or patterns) keeps only the chosen agents' calls."""
    chosen = tuple(train_agents)
    out = BuiltTransitions([], 0, [])
    last_of_agent: dict[str, int] = {}
    for call in sorted(calls, key=lambda c: c.seq):
        if not selected(call.agent_name, chosen):
            continue
        completion = first_completion(call)
        tokens = list(completion.token_ids)
        if not tokens:
            out.skipped += 1
            continue
        logprobs = list(completion.logprobs)
        if len(logprobs) != len(tokens):
            out.missing_logprobs += 1
            logprobs = [0.0] * len(tokens)  # keep the arrays aligned; the count tells the operator
        # Each agent of a multi-agent rollout has its own conversation: a call continues its own agent's last one.
        index = last_of_agent.get(call.agent_name)
        prev = out.transitions[index] if index is not None else None
        if merge and prev is not None:
            context = list(prev.prompt_token_ids) + list(prev.response_token_ids)
            prompt = list(call.prompt_token_ids)
            if len(prompt) >= len(context) and prompt[: len(context)] == context:
                observation = prompt[len(context):]
                prev.response_token_ids.extend(observation + tokens)
                prev.response_mask.extend([0] * len(observation) + [1] * len(tokens))
                prev.response_logprobs.extend([0.0] * len(observation) + logprobs)
                prev.merged_calls += 1
                # The oldest version that produced any token bounds staleness.
                prev.model_version = min(prev.model_version, call.model_version) if prev.model_version else call.model_version
                out.call_ids[index].append(call.call_id)
                continue
            out.mismatches += 1
        out.transitions.append(events_pb2.Transition(
            call_id=call.call_id, seq=call.seq, prompt_token_ids=call.prompt_token_ids,
            response_token_ids=tokens, response_mask=[1] * len(tokens),
            response_logprobs=logprobs, model_version=call.model_version, agent_name=call.agent_name, merged_calls=1,
        ))
        out.call_ids.append([call.call_id])
        last_of_agent[call.agent_name] = len(out.transitions) - 1
    return out

"""Transitions from a rollout's LLM calls, on the exact token ids the gateway captured (never re-tokenized).

With merging on, a call whose prompt extends the previous transition's prompt+response exactly joins it: the
tokens in between (tool results, new user turns) are appended as observations with mask 0. A call that does not
extend it starts a new transition and is counted as a mismatch.
"""

from __future__ import annotations

from dataclasses import dataclass

from lightwire.v1 import events_pb2


@dataclass
class BuiltTransitions:
    transitions: list[events_pb2.Transition]
    mismatches: int


def build(calls: list[events_pb2.LlmCall], merge: bool = True) -> BuiltTransitions:
    transitions: list[events_pb2.Transition] = []
    mismatches = 0
    for call in calls:
        if not call.completions or not call.completions[0].token_ids:
            continue
        completion = call.completions[0]
        logprobs = list(completion.logprobs) or [0.0] * len(completion.token_ids)
        prev = transitions[-1] if transitions else None
        if merge and prev is not None and prev.agent_name == call.agent_name:
            context = list(prev.prompt_token_ids) + list(prev.response_token_ids)
            prompt = list(call.prompt_token_ids)
            if prompt[: len(context)] == context:
                observation = prompt[len(context):]
                prev.response_token_ids.extend(observation + list(completion.token_ids))
                prev.response_mask.extend([0] * len(observation) + [1] * len(completion.token_ids))
                prev.response_logprobs.extend([0.0] * len(observation) + logprobs)
                prev.merged_calls += 1
                prev.model_version = min(prev.model_version, call.model_version) if prev.model_version else call.model_version
                continue
            mismatches += 1
        transitions.append(events_pb2.Transition(
            call_id=call.call_id, seq=call.seq, prompt_token_ids=call.prompt_token_ids,
            response_token_ids=completion.token_ids, response_mask=[1] * len(completion.token_ids),
            response_logprobs=logprobs, model_version=call.model_version, agent_name=call.agent_name, merged_calls=1,
        ))
    return BuiltTransitions(transitions, mismatches)

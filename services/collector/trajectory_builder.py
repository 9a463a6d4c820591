"""Transitions from a rollout's LLM calls, on the exact token ids the gateway captured (never re-tokenized).

One transition per call: prompt = the call's prompt token ids, response = the token ids of completion 0, mask 1,
the behaviour logprobs recorded at sampling. With merging on, a call whose prompt extends the previous transition's
prompt+response exactly joins it: the tokens in between (tool results, new user turns) are appended as observations
with mask 0 and logprob 0. A call that does not extend it starts a new transition and is counted as a mismatch, so
a chat template that rewrites history shows up in the numbers instead of silently training on the wrong context.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableSequence, Sequence
from dataclasses import dataclass

from lightwire.v1 import events_pb2
from lightwire.services.collector.credit import selected
from lightwire.plugins.rollout_view import first_completion


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


def build(calls: Sequence[events_pb2.LlmCall], merge: bool = True, train_agents: Iterable[str] = (),
          into: MutableSequence[events_pb2.Transition] | None = None) -> BuiltTransitions:
    """The transitions of one rollout; `train_agents` (names or patterns) keeps only the chosen agents' calls.

    With `into` (a Trajectory's repeated `transitions`), the transitions are built in place there (no copy afterwards);
    the returned list holds the same messages.
    """
    chosen = tuple(train_agents)
    new_transition = into.add if into is not None else events_pb2.Transition
    out = BuiltTransitions([], 0, [])
    last_of_agent: dict[str, int] = {}
    # Per transition: how many token ids it holds (prompt + response), and those ids as a list once a later call had to
    # be compared with them; most mismatches show in the length alone.
    lengths: list[int] = []
    contexts: list[list[int] | None] = []
    for call in sorted(calls, key=_seq):
        agent = call.agent_name
        if chosen and not selected(agent, chosen):
            continue
        completion = first_completion(call)
        tokens = completion.token_ids
        n = len(tokens)
        if not n:
            out.skipped += 1
            continue
        logprobs = completion.logprobs
        if len(logprobs) != n:
            out.missing_logprobs += 1
            logprobs = [0.0] * n  # keep the arrays aligned; the count tells the operator
        # Each agent of a multi-agent rollout has its own conversation: a call continues its own agent's last one.
        index = last_of_agent.get(agent)
        if merge and index is not None:
            prompt = call.prompt_token_ids
            k = lengths[index]
            if len(prompt) >= k and prompt[:k] == _context(out.transitions, contexts, index):
                observation = prompt[k:]
                prev = out.transitions[index]
                prev.response_token_ids.extend(observation)
                prev.response_token_ids.extend(tokens)
                prev.response_mask.extend([0] * len(observation) + [1] * n)
                prev.response_logprobs.extend([0.0] * len(observation))
                prev.response_logprobs.extend(logprobs)
                prev.merged_calls += 1
                # The oldest version that produced any token bounds staleness.
                prev.model_version = min(prev.model_version, call.model_version) if prev.model_version else call.model_version
                out.call_ids[index].append(call.call_id)
                contexts[index] += observation
                contexts[index] += tokens
                lengths[index] = len(prompt) + n
                continue
            out.mismatches += 1
        out.transitions.append(new_transition(
            call_id=call.call_id, seq=call.seq, prompt_token_ids=call.prompt_token_ids, response_token_ids=tokens,
            response_mask=[1] * n, response_logprobs=logprobs, model_version=call.model_version, agent_name=agent, merged_calls=1,
        ))
        out.call_ids.append([call.call_id])
        if merge:
            lengths.append(len(call.prompt_token_ids) + n)
            contexts.append(None)
        last_of_agent[agent] = len(out.transitions) - 1
    return out


def _context(transitions: list[events_pb2.Transition], contexts: list[list[int] | None], index: int) -> list[int]:
    context = contexts[index]
    if context is None:
        t = transitions[index]
        context = contexts[index] = t.prompt_token_ids[:] + t.response_token_ids[:]
    return context


def _seq(call: events_pb2.LlmCall) -> int:
    return call.seq

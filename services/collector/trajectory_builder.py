"""Transitions from a rollout's LLM calls, on the exact token ids the gateway captured (never re-tokenized).

One transition per call: prompt = the call's prompt token ids, response = the token ids of completion 0, mask 1,
the behaviour logprobs recorded at sampling. With merging on, a call whose prompt extends the previous transition's
prompt+response exactly joins it: the tokens in between (tool results, new user turns) are appended as observations
with mask 0 and logprob 0. A call that does not extend it starts a new transition and is counted as a mismatch, so
a chat template that rewrites history shows up in the numbers instead of silently training on the wrong context.

Calls with several completions (n > 1): every completion is a sample of the same state, and each one trains. The
completion with index 0 is the one the agent continued from, so it alone takes part in merging, as above. Each other
completion becomes a transition of its own: the call's prompt token ids, its own completion token ids and logprobs,
mask 1, never merged with anything. These sample transitions come after the rollout's step transitions (in call seq
order, then completion index) and are not steps of their own: credit is assigned over the steps, and a sample shares
the credit of the step that holds its call's completion 0 (`BuiltTransitions.per_transition`). A sample without
tokens is left out; one without a logprob per token gets logprobs 0 and is counted in `missing_logprobs`. A call whose
completion 0 has no tokens is skipped whole (counted in `skipped`), its other completions with it.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableSequence, Sequence
from dataclasses import dataclass, field

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
    # The further completions of n > 1 calls: transitions[len(call_ids) + i] is a sample of step sample_steps[i].
    sample_steps: list[int] = field(default_factory=list)

    @property
    def steps(self) -> int:
        """Transitions that are steps (credit is assigned over these); the samples follow them."""
        return len(self.call_ids)

    def per_transition(self, per_step: Sequence[float]) -> list[float]:
        """One value per transition from one per step: each sample takes its step's."""
        return list(per_step) + [per_step[step] for step in self.sample_steps]


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
    samples: list[tuple[int, events_pb2.LlmCall, events_pb2.Completion]] = []  # (step, call, completion)
    for call in sorted(calls, key=_seq):
        agent = call.agent_name
        if chosen and not selected(agent, chosen):
            continue
        completion, others = _completions(call)
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
                samples.extend((index, call, c) for c in others)
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
        samples.extend((len(out.transitions) - 1, call, c) for c in others)
    for step, call, completion in samples:
        tokens = completion.token_ids
        n = len(tokens)
        if not n:
            continue
        logprobs = completion.logprobs
        if len(logprobs) != n:
            out.missing_logprobs += 1
            logprobs = [0.0] * n
        out.transitions.append(new_transition(
            call_id=call.call_id, seq=call.seq, prompt_token_ids=call.prompt_token_ids, response_token_ids=tokens,
            response_mask=[1] * n, response_logprobs=logprobs, model_version=call.model_version, agent_name=call.agent_name,
            merged_calls=1,
        ))
        out.sample_steps.append(step)
    return out


def _completions(call: events_pb2.LlmCall) -> tuple[events_pb2.Completion, list[events_pb2.Completion]]:
    """The completion the agent continued from (`first_completion`'s) and the call's other completions, by index."""
    completions = call.completions
    if len(completions) <= 1:
        return first_completion(call), []
    position = next((i for i, c in enumerate(completions) if c.index == 0), 0)
    others = [c for i, c in enumerate(completions) if i != position]
    return completions[position], sorted(others, key=lambda c: c.index)


def _context(transitions: list[events_pb2.Transition], contexts: list[list[int] | None], index: int) -> list[int]:
    context = contexts[index]
    if context is None:
        t = transitions[index]
        context = contexts[index] = t.prompt_token_ids[:] + t.response_token_ids[:]
    return context


def _seq(call: events_pb2.LlmCall) -> int:
    return call.seq

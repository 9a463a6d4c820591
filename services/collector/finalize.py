"""Turns a complete (or timed-out) rollout's state into its Trajectory: attribution, rewards, credit, transitions."""

from __future__ import annotations

from dataclasses import dataclass

from lightwire.v1 import collector_pb2, events_pb2
from services.collector import rollout_state
from services.collector.settings import CollectorSettings


@dataclass
class TrajectoryFinalizer:
    merge_turns: bool = True

    @classmethod
    def from_settings(cls, settings: CollectorSettings) -> "TrajectoryFinalizer":
        return cls(merge_turns=settings.collector_merge_turns)

    def __call__(self, state: collector_pb2.RolloutState, timed_out: bool) -> tuple[events_pb2.Trajectory, dict[str, float]]:
        c = rollout_state.contents(state)
        task = c.started.task if c.started else events_pb2.Task()
        if timed_out:
            status = events_pb2.ROLLOUT_STATUS_TIMED_OUT
        else:
            status = c.finished.status if c.finished else events_pb2.ROLLOUT_STATUS_UNSPECIFIED
        components = {}
        agent = [r.value for r in c.rewards if not r.call_id]
        if agent:
            components["task_completion"] = agent[-1]
        reward = sum(components.values())
        transitions = []
        for call in c.calls:
            if not call.completions:
                continue
            comp = call.completions[0]
            transitions.append(events_pb2.Transition(
                call_id=call.call_id, seq=call.seq, prompt_token_ids=call.prompt_token_ids, response_token_ids=comp.token_ids,
                response_mask=[1] * len(comp.token_ids), response_logprobs=comp.logprobs, reward=reward,
                model_version=call.model_version, agent_name=call.agent_name, merged_calls=1,
            ))
        versions = [call.model_version for call in c.calls if call.model_version]
        return events_pb2.Trajectory(
            rollout_id=state.rollout_id, task_id=task.task_id, group_id=task.group_id, task_type=task.task_type, split=task.split,
            status=status, transitions=transitions, reward=reward, reward_components=components,
            min_model_version=min(versions, default=0), max_model_version=max(versions, default=0), num_calls=len(c.calls),
            group_size=task.group_size,
        ), components

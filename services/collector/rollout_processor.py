"""Turns a micro-batch of rollout events into state updates, analytics rows and released trajectories.

Kept free of Faust so it can be tested with a dict as the table. The agent in app.py feeds it and then writes
the outputs before the batch's offsets are committed, and only then the new states (at-least-once: a crash
in between replays against the old state; every output id is deterministic, so readers deduplicate).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass

from lightwire.runtime import codec
from lightwire.topics import TopicNames
from lightwire.v1 import collector_pb2, events_pb2
from lightwire.services.collector import rollout_state
from lightwire.services.collector.analytics_rows import add_event_rows, add_trajectory_rows
from lightwire.services.collector.outputs import Outputs, StagedTable

# (rollout state, timed out?) -> (trajectory, function reward components). A finalizer that also has
# `fill(trajectory, state, timed_out) -> components` gets the trajectory event's own payload to write into.
Finalize = Callable[[collector_pb2.RolloutState, bool], tuple[events_pb2.Trajectory, dict[str, float]]]


@dataclass(frozen=True)
class Timing:
    grace_ms: int
    timeout_ms: int
    retention_ms: int


def trajectory_event_id(rollout_id: str) -> str:
    return f"traj-{rollout_id}"


class RolloutProcessor:
    def __init__(self, table: MutableMapping[bytes, bytes], finalize: Finalize, names: TopicNames, groups_topic: str,
                 timing: Timing, source: str):
        self.table = table
        self.finalize = finalize
        self.names = names
        self.groups_topic = groups_topic
        self.timing = timing
        self.source = source
        # rollout id -> when to look at it again; memory only, rebuilt from the table after a rebalance.
        self.deadlines: dict[str, int] = {}
        # When this instance took its partitions over: the time they had no live reader (a collector killed, its
        # session running out, the table recovering) is not the agent's silence, so no rollout times out for it.
        self.silent_since_ms = 0
        self.released = 0
        self.late_rewards = 0
        self.late_events = 0  # calls and spans after release: analytics only, the trajectory has gone

    def load(self, table: StagedTable, rollout_id: str, now_ms: int) -> collector_pb2.RolloutState:
        raw = table.get(rollout_id.encode())
        if raw is None:
            return rollout_state.new_state(rollout_id, now_ms)
        state = collector_pb2.RolloutState()
        state.ParseFromString(raw)
        return state

    @staticmethod
    def store(table: StagedTable, state: collector_pb2.RolloutState) -> None:
        table[state.rollout_id.encode()] = state.SerializeToString()

    def handle(self, events: Iterable[events_pb2.Event], now_ms: int, out: Outputs) -> None:
        table = StagedTable(self.table, out)
        by_rollout: dict[str, list[events_pb2.Event]] = {}
        for event in events:
            rollout_id = rollout_state.rollout_key(event)
            if not rollout_id:
                # Calls made outside any rollout are analytics only.
                add_event_rows(out.rows, event)
                continue
            by_rollout.setdefault(rollout_id, []).append(event)
        for rollout_id, batch in by_rollout.items():
            state = self.load(table, rollout_id, now_ms)
            for event in batch:
                was_released = state.released
                if not rollout_state.apply(state, event, now_ms, check_complete=False):
                    continue
                if was_released:
                    self._late(state, event, out)
                else:
                    add_event_rows(out.rows, event)
            rollout_state.mark_complete(state, now_ms)
            self._maybe_release(state, now_ms, out)
            self.store(table, state)

    def tick(self, now_ms: int, out: Outputs) -> None:
        """Release what is due (grace passed, timed out) and forget released rollouts past retention."""
        table = StagedTable(self.table, out)
        for rollout_id, deadline in list(self.deadlines.items()):
            if deadline > now_ms:
                continue
            raw = table.get(rollout_id.encode())
            if raw is None:
                self.deadlines.pop(rollout_id, None)
                continue
            state = collector_pb2.RolloutState()
            state.ParseFromString(raw)
            if state.released:
                if now_ms - state.released_unix_ms >= self.timing.retention_ms:
                    del table[rollout_id.encode()]
                    self.deadlines.pop(rollout_id, None)
                continue
            self._maybe_release(state, now_ms, out)
            self.store(table, state)

    def rebuild_deadlines(self, now_ms: int) -> None:
        """After a rebalance (or a start): the table may hold rollouts another instance was reading until now."""
        self.silent_since_ms = now_ms
        self.deadlines.clear()
        for key, raw in list(self.table.items()):
            state = collector_pb2.RolloutState()
            state.ParseFromString(raw)
            self._schedule(state)

    def _schedule(self, state: collector_pb2.RolloutState) -> None:
        t = self.timing
        if state.released:
            self.deadlines[state.rollout_id] = state.released_unix_ms + t.retention_ms
        elif state.completed_unix_ms:
            self.deadlines[state.rollout_id] = state.completed_unix_ms + t.grace_ms
        else:
            self.deadlines[state.rollout_id] = max(state.last_event_unix_ms, self.silent_since_ms) + t.timeout_ms

    def _maybe_release(self, state: collector_pb2.RolloutState, now_ms: int, out: Outputs) -> None:
        due, timed_out = rollout_state.due_for_release(state, now_ms, self.timing.grace_ms, self.timing.timeout_ms, self.silent_since_ms)
        if due:
            self._release(state, timed_out, now_ms, out)
        self._schedule(state)

    def _release(self, state: collector_pb2.RolloutState, timed_out: bool, now_ms: int, out: Outputs) -> None:
        event_id = trajectory_event_id(state.rollout_id)
        fill = getattr(self.finalize, "fill", None)
        if fill is not None:
            # The finalizer writes straight into the event: one copy of the token arrays fewer per rollout.
            event = codec.make_event(self.source, event_id=event_id, trajectory=events_pb2.Trajectory())
            function_rewards = fill(event.trajectory, state, timed_out)
        else:
            trajectory, function_rewards = self.finalize(state, timed_out)
            event = codec.make_event(self.source, event_id=event_id, trajectory=trajectory)
        trajectory = event.trajectory
        out.send(self.names.trajectories, state.rollout_id, event)
        add_trajectory_rows(out.rows, event, function_rewards)
        if trajectory.split != "eval" and trajectory.group_id:
            member = events_pb2.Event()
            member.CopyFrom(event)
            member.event_id = f"member-{state.rollout_id}"
            out.send(self.groups_topic, trajectory.group_id, member)
        rollout_state.mark_released(state, now_ms, trajectory.status)
        self.released += 1

    def _late(self, state: collector_pb2.RolloutState, event: events_pb2.Event, out: Outputs) -> None:
        """Feedback or rewards after release: recorded as late rewards and announced as a correction, never lost."""
        kind = event.WhichOneof("payload")
        if kind not in ("feedback", "reward"):
            # A call or span after its trajectory went (its gateway's spool was replayed late, say): the trajectory
            # cannot take it any more, the analytics still do, so no call the client saw succeed goes unrecorded.
            add_event_rows(out.rows, event)
            self.late_events += 1
            return
        add_event_rows(out.rows, event, late=True)
        if kind == "feedback":
            f = event.feedback
            reward = events_pb2.RolloutReward(
                rollout_id=state.rollout_id, call_id=f.call_id if f.WhichOneof("target") == "call_id" else "",
                name=f.name, value=f.value, source="feedback", late=True, comment=f.comment,
            )
        else:
            reward = events_pb2.RolloutReward()
            reward.CopyFrom(event.reward)
            reward.late = True
        correction = codec.make_event(self.source, event_id=f"late-{event.event_id}", reward=reward)
        out.send(self.names.trajectories, state.rollout_id, correction)
        self.late_rewards += 1

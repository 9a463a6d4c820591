"""Assembles released trajectories into whole GRPO groups and groups into training batches.

Runs on the collector's internal groups topic (one partition, keyed by group id): group assembly is light
(one record per rollout), so one instance does it while rollout assembly scales out over partitions.
"""

from __future__ import annotations

from collections.abc import MutableMapping

from lightwire.runtime import codec
from lightwire.v1 import collector_pb2, events_pb2
from services.collector import grouping
from services.collector.outputs import Outputs

BUFFER_KEY = b"__batch_buffer__"


class GroupProcessor:
    def __init__(self, table: MutableMapping[bytes, bytes], policy: grouping.GroupPolicy, batch_groups: int,
                 batches_topic: str, source: str, retention_ms: int):
        self.table = table
        self.policy = policy
        self.batch_groups = batch_groups
        self.batches_topic = batches_topic
        self.source = source
        self.retention_ms = retention_ms
        self.outcomes: dict[str, int] = {}
        self.batches = 0

    def _load_group(self, group_id: str) -> collector_pb2.GroupState:
        state = collector_pb2.GroupState()
        raw = self.table.get(group_id.encode())
        if raw is not None:
            state.ParseFromString(raw)
        return state

    def _load_buffer(self) -> collector_pb2.BatchBuffer:
        buffer = collector_pb2.BatchBuffer()
        raw = self.table.get(BUFFER_KEY)
        if raw is not None:
            buffer.ParseFromString(raw)
        return buffer

    def handle(self, trajectories: list[events_pb2.Trajectory], now_ms: int, out: Outputs) -> None:
        touched: dict[str, collector_pb2.GroupState] = {}
        for trajectory in trajectories:
            group = touched.get(trajectory.group_id) or self._load_group(trajectory.group_id)
            touched[trajectory.group_id] = group
            grouping.add_member(group, trajectory, now_ms)
        buffer = self._load_buffer()
        for group in touched.values():
            self._decide(group, buffer, now_ms, out)
        self.table[BUFFER_KEY] = buffer.SerializeToString()

    def tick(self, now_ms: int, out: Outputs) -> None:
        buffer = self._load_buffer()
        before = buffer.SerializeToString()
        for key, raw in list(self.table.items()):
            if key == BUFFER_KEY:
                continue
            group = collector_pb2.GroupState()
            group.ParseFromString(raw)
            if group.released:
                if now_ms - group.released_unix_ms >= self.retention_ms:
                    del self.table[key]
                continue
            if grouping.decide(group, now_ms, self.policy) is not None:
                self._decide(group, buffer, now_ms, out)
        if buffer.SerializeToString() != before:
            self.table[BUFFER_KEY] = buffer.SerializeToString()

    def _decide(self, group: collector_pb2.GroupState, buffer: collector_pb2.BatchBuffer, now_ms: int, out: Outputs) -> None:
        outcome = grouping.decide(group, now_ms, self.policy)
        if outcome is not None:
            whole = grouping.release(group, outcome, now_ms, self.policy)
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
            if whole is not None:
                batch = grouping.fill_batch(buffer, whole, self.batch_groups, now_ms)
                if batch is not None:
                    out.send(self.batches_topic, batch.groups[0].group_id, codec.make_event(self.source, event_id=batch.batch_id, batch=batch))
                    self.batches += 1
        self.table[group.group_id.encode()] = group.SerializeToString()

"""Assembles released trajectories into whole GRPO groups and groups into training batches.

Runs on the collector's internal groups topic (one partition, keyed by group id): group assembly is light
(one record per rollout), so one instance does it while rollout assembly scales out over partitions.

Table layout: one key holds the GroupBook (every group's bookkeeping and the batch being filled), so a step's
decisions are persisted by one write; each member trajectory lives under "t/<rollout_id>", written before the
book and deleted after it, so the book never names a trajectory that is not stored.
"""

from __future__ import annotations

from collections.abc import MutableMapping

from lightwire.runtime import codec
from lightwire.v1 import collector_pb2, events_pb2
from lightwire.services.collector import grouping
from lightwire.services.collector.analytics_rows import add_batch_rows
from lightwire.services.collector.outputs import Outputs, StagedTable

BOOK_KEY = b"__group_book__"


def member_key(rollout_id: str) -> bytes:
    return b"t/" + rollout_id.encode()


class GroupProcessor:
    def __init__(self, table: MutableMapping[bytes, bytes], policy: grouping.GroupPolicy, batch_groups: int,
                 batches_topic: str, source: str, retention_ms: int):
        self.table = table
        self.policy = policy
        self.batch_groups = batch_groups
        self.batches_topic = batches_topic
        self.source = source
        self.retention_ms = retention_ms
        self.outcomes: dict[str, int] = {}  # released groups by grouping.counted outcome: batched, or why dropped
        self.batches = 0

    @staticmethod
    def _load_book(table: StagedTable) -> collector_pb2.GroupBook:
        book = collector_pb2.GroupBook()
        raw = table.get(BOOK_KEY)
        if raw is not None:
            book.ParseFromString(raw)
        return book

    def handle(self, trajectories: list[events_pb2.Trajectory], now_ms: int, out: Outputs) -> None:
        table = StagedTable(self.table, out)
        book = self._load_book(table)
        # Groups in the order the stream made them due, so batches hold the same groups wherever micro-batches cut the
        # stream: a replay after a crash cuts it elsewhere and must rebuild the same batch ids, not regroup.
        due: dict[str, None] = {}
        # New members, stored by `_step` unless their group goes out in this step (most do): no serialising and
        # parsing back of a trajectory that only passes through.
        fresh: dict[bytes, events_pb2.Trajectory] = {}
        for trajectory in trajectories:
            group = book.groups[trajectory.group_id]
            if grouping.add_member(group, trajectory, now_ms):
                fresh[member_key(trajectory.rollout_id)] = trajectory
                if grouping.decide(group, now_ms, self.policy) is not None:
                    due.setdefault(trajectory.group_id)
        self._step(table, book, now_ms, out, list(due), fresh)

    def tick(self, now_ms: int, out: Outputs) -> None:
        table = StagedTable(self.table, out)
        book = self._load_book(table)
        expired = [gid for gid, g in book.groups.items() if g.released and now_ms - g.released_unix_ms >= self.retention_ms]
        due = sorted(gid for gid, g in book.groups.items() if grouping.decide(g, now_ms, self.policy) is not None)
        if not expired and not due:
            return
        for gid in expired:
            del book.groups[gid]
        self._step(table, book, now_ms, out, due)

    def _step(self, table: StagedTable, book: collector_pb2.GroupBook, now_ms: int, out: Outputs, candidates: list[str],
              fresh: dict[bytes, events_pb2.Trajectory] | None = None) -> None:
        fresh = fresh or {}
        members_seen = dict(fresh)  # each member parsed at most once per step
        done_members: list[bytes] = []
        for group_id in candidates:
            group = book.groups[group_id]
            outcome = grouping.decide(group, now_ms, self.policy)
            if outcome is None:
                continue
            members = [self._member(table, rid, members_seen) for rid in group.rollout_ids]
            kept = grouping.release(group, outcome, [m for m in members if m is not None], now_ms, self.policy)
            counted = grouping.counted(group.outcome)
            self.outcomes[counted] = self.outcomes.get(counted, 0) + 1
            if kept is None:
                done_members.extend(member_key(r) for r in group.rollout_ids)
                del group.rollout_ids[:]  # a released group is kept only as a tombstone against replays
                continue
            book.buffered_group_ids.append(group_id)
            if len(book.buffered_group_ids) >= self.batch_groups:
                done_members.extend(self._emit(table, book, out, members_seen))
        # Members before the book (see the module's docstring), old members deleted after it.
        done = set(done_members)
        for key, trajectory in fresh.items():
            if key not in done:
                table[key] = trajectory.SerializeToString()
        table[BOOK_KEY] = book.SerializeToString()
        for key in done_members:
            if key not in fresh:
                del table[key]

    def _emit(self, table: StagedTable, book: collector_pb2.GroupBook, out: Outputs,
              members_seen: dict[bytes, events_pb2.Trajectory]) -> list[bytes]:
        # The batch is built inside its event: each trajectory is copied once, into its group there.
        event = codec.make_event(self.source, event_id="pending", batch=events_pb2.TrainingBatch())
        batch = event.batch
        used: list[bytes] = []
        for group_id in book.buffered_group_ids:
            group = book.groups[group_id]
            members = [m for m in (self._member(table, rid, members_seen) for rid in group.rollout_ids) if m is not None]
            whole = batch.groups.add(group_id=group_id, task_id=group.task_id)
            whole.trajectories.extend(sorted(grouping.trainable(members, self.policy), key=lambda t: t.rollout_id))
            used.extend(member_key(r) for r in group.rollout_ids)
            del group.rollout_ids[:]
        event.event_id = grouping.seal_batch(batch).batch_id
        del book.buffered_group_ids[:]
        add_batch_rows(out.rows, event)
        out.send(self.batches_topic, batch.groups[0].group_id, event)
        self.batches += 1
        return used

    @staticmethod
    def _member(table: StagedTable, rollout_id: str, seen: dict[bytes, events_pb2.Trajectory]) -> events_pb2.Trajectory | None:
        key = member_key(rollout_id)
        trajectory = seen.get(key)
        if trajectory is not None:
            return trajectory
        raw = table.get(key)
        if raw is None:
            return None
        trajectory = seen[key] = events_pb2.Trajectory()
        trajectory.ParseFromString(raw)
        return trajectory

"""What one step of the collector produces: records for Kafka and rows for the analytics store."""

from __future__ import annotations

from dataclasses import dataclass, field

from lightwire.v1 import events_pb2
from lightwire.services.collector.analytics_rows import RowBuffer


@dataclass
class Outputs:
    records: list[tuple[str, str, events_pb2.Event]] = field(default_factory=list)  # (topic, key, event)
    rows: RowBuffer = field(default_factory=RowBuffer)
    dead_letters: list[tuple[object, str]] = field(default_factory=list)  # (source record, reason)
    # New table values (None deletes), written only after the records and rows above are safely out: a crash
    # in between replays the events against the old state, so outputs repeat (same ids) but are never lost.
    state_writes: dict[bytes, bytes | None] = field(default_factory=dict)

    def send(self, topic: str, key: str, event: events_pb2.Event) -> None:
        self.records.append((topic, key, event))


class StagedTable:
    """A table view that reads through the writes staged in `out` and stages new ones there."""

    def __init__(self, table, out: Outputs):
        self.table = table
        self.out = out

    def get(self, key: bytes) -> bytes | None:
        if key in self.out.state_writes:
            return self.out.state_writes[key]
        return self.table.get(key)

    # Re-inserting moves a key to the end: writes reach the changelog in the order they were last made.
    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.out.state_writes.pop(key, None)
        self.out.state_writes[key] = value

    def __delitem__(self, key: bytes) -> None:
        self.out.state_writes.pop(key, None)
        self.out.state_writes[key] = None


def apply_state_writes(table, out: Outputs) -> None:
    for key, value in out.state_writes.items():
        if value is None:
            if key in table:
                del table[key]
        else:
            table[key] = value
    out.state_writes.clear()


class PendingStates:
    """A table as it will be once the steps whose outputs are still being written have applied their state.

    Lets the next micro-batch be assembled while the previous one's outputs are in flight: reads see the newest
    staged value of a key, the table itself is written only by `applied`, after that step's sinks succeeded.
    """

    def __init__(self, table):
        self.table = table
        self._pending: dict[bytes, tuple[int, bytes | None]] = {}  # key -> (step, value or None for a delete)
        self._step = 0

    def get(self, key: bytes, default=None):
        if key in self._pending:
            value = self._pending[key][1]
            return default if value is None else value
        return self.table.get(key, default)

    def stage(self, out: Outputs) -> tuple[int, list[bytes]]:
        """Make `out`'s state writes visible to later reads; returns the step's handle for `applied`."""
        self._step += 1
        for key, value in out.state_writes.items():
            self._pending[key] = (self._step, value)
        return self._step, list(out.state_writes)

    def applied(self, handle: tuple[int, list[bytes]]) -> None:
        step, keys = handle
        for key in keys:
            if self._pending.get(key, (None,))[0] == step:
                del self._pending[key]

    @property
    def writes_pending(self) -> int:
        return len(self._pending)

    # Deadline bookkeeping reads the table whole; it runs only with nothing pending.
    def items(self):
        assert not self._pending, "read the whole table only with no writes pending"
        return self.table.items()

    def __contains__(self, key: bytes) -> bool:
        return self.get(key) is not None

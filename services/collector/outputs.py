"""What one step of the collector produces: records for Kafka and rows for the analytics store."""

from __future__ import annotations

from dataclasses import dataclass, field

from lightwire.v1 import events_pb2
from services.collector.analytics_rows import RowBuffer


@dataclass
class Outputs:
    records: list[tuple[str, str, events_pb2.Event]] = field(default_factory=list)  # (topic, key, event)
    rows: RowBuffer = field(default_factory=RowBuffer)
    dead_letters: list[tuple[object, str]] = field(default_factory=list)  # (source record, reason)

    def send(self, topic: str, key: str, event: events_pb2.Event) -> None:
        self.records.append((topic, key, event))

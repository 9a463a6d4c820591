"""Reading lw.trajectories to its end and writing the rows out: the I/O half of `lightwire export`."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from lightwire.runtime import codec
from lightwire.runtime.kafka import describe_topics
from lightwire.v1 import events_pb2 as pb
from lightwire.tools.export.rows import KINDS, ExportFilter, add_text, pair_rows, transition_rows

FORMATS = ("jsonl", "parquet")


@dataclass(frozen=True)
class ExportRequest:
    bootstrap: str
    topic: str
    out: Path
    kind: str = "transitions"
    formats: tuple[str, ...] = FORMATS
    filter: ExportFilter = field(default_factory=ExportFilter)
    label_threshold: float = 1.0
    timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind is one of {', '.join(KINDS)}, not {self.kind!r}")
        if not self.formats or set(self.formats) - set(FORMATS):
            raise ValueError(f"formats are some of {', '.join(FORMATS)}, not {', '.join(self.formats) or 'none'}")
        if not math.isfinite(self.label_threshold):
            raise ValueError("the label threshold must be a number")


@dataclass
class ExportReport:
    records: int = 0
    trajectories: int = 0
    duplicates: int = 0
    unreadable: int = 0
    kept: int = 0
    rows: int = 0
    groups_without_pair: int = 0
    files: list[Path] = field(default_factory=list)


Progress = Callable[[int, int], None]  # (records read so far, records to read)


async def read_trajectories(bootstrap: str, topic: str, report: ExportReport, progress: Progress | None = None,
                            timeout_s: float = 60.0) -> list[pb.Trajectory]:
    """Every trajectory on the topic up to the end offsets seen at the start, once each: delivery is at-least-once,
    so a rollout released twice (a collector restart) is kept the first time only."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        partitions = await asyncio.wait_for(_partitions(bootstrap, topic), timeout_s)
        consumer.assign(partitions)
        begin, end = await consumer.beginning_offsets(partitions), await consumer.end_offsets(partitions)
        total = sum(end[tp] - begin[tp] for tp in partitions)
        seen: dict[str, pb.Trajectory] = {}
        while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
            batches = await asyncio.wait_for(consumer.getmany(timeout_ms=500), timeout_s)
            for tp, records in batches.items():
                for record in records:
                    if record.offset >= end[tp]:
                        continue
                    report.records += 1
                    try:
                        event = codec.decode(record.value).event
                    except codec.InvalidRecord:
                        report.unreadable += 1
                        continue
                    if event.WhichOneof("payload") != "trajectory":
                        report.unreadable += 1
                        continue
                    t = event.trajectory
                    if t.rollout_id in seen:
                        report.duplicates += 1
                    else:
                        seen[t.rollout_id] = t
            if progress:
                progress(report.records, total)
        report.trajectories = len(seen)
        return list(seen.values())
    finally:
        await consumer.stop()


async def _partitions(bootstrap: str, topic: str) -> list[TopicPartition]:
    counts = await describe_topics(bootstrap)
    if topic not in counts:
        raise LookupError(f"topic {topic} does not exist on {bootstrap}")
    return [TopicPartition(topic, p) for p in range(counts[topic])]


def build_rows(trajectories: list[pb.Trajectory], request: ExportRequest, report: ExportReport,
               decode: Callable[[list[int]], str] | None = None) -> list[dict]:
    kept = [t for t in trajectories if request.filter.keeps(t)]
    report.kept = len(kept)
    if request.kind == "pairs":
        rows, report.groups_without_pair = pair_rows(kept)
    else:
        rows = [row for t in kept for row in transition_rows(t, label_threshold=request.label_threshold, agent=request.filter.agent)]
    if decode is not None:
        add_text(rows, decode)
    report.rows = len(rows)
    return rows


def write_rows(rows: list[dict], out: Path, formats: tuple[str, ...]) -> list[Path]:
    """One file per format: OUT.jsonl, OUT.parquet (a dot in OUT stays: "calls.v2" gives calls.v2.jsonl)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    written = []
    if "jsonl" in formats:
        path = out.with_name(out.name + ".jsonl")
        with path.open("wb") as f:
            for row in rows:
                f.write(orjson.dumps(row) + b"\n")
        written.append(path)
    if "parquet" in formats:
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = out.with_name(out.name + ".parquet")
        pq.write_table(pa.Table.from_pylist(rows) if rows else pa.table({}), path)
        written.append(path)
    return written


def export(request: ExportRequest, progress: Progress | None = None, decode: Callable[[list[int]], str] | None = None) -> ExportReport:
    report = ExportReport()
    trajectories = asyncio.run(read_trajectories(request.bootstrap, request.topic, report, progress, request.timeout_s))
    rows = build_rows(trajectories, request, report, decode)
    report.files = write_rows(rows, request.out, request.formats)
    return report

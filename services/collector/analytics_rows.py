"""Pure mapping from events to analytics rows (table, columns, values). Row keys are event ids: sinks dedupe."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from lightwire.services.collector import packed_tokens
from lightwire.v1 import events_pb2

TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "llm_calls": (
        "event_id", "rollout_id", "call_id", "seq", "model", "model_version", "agent_name", "endpoint", "prompt_tokens",
        "completion_tokens", "latency_ms", "http_status", "error_class", "finish_reason", "started_at", "gateway_id",
        "request_json", "response_json", "completion_token_ids_packed", "completion_logprobs_packed", "prompt_version",
    ),
    "rollouts": (
        "rollout_id", "event_id", "task_id", "group_id", "task_type", "split", "status", "reward", "num_calls", "num_errors",
        "merge_mismatches", "min_model_version", "max_model_version", "finished_at",
    ),
    "rewards": ("event_id", "rollout_id", "call_id", "name", "value", "source", "late", "created_at"),
    "errors": ("event_id", "rollout_id", "step", "error_class", "message", "stack", "attributor", "task_type", "model_version", "created_at"),
    "train_steps": (
        "event_id", "model", "step", "version", "loss", "kl", "reward_mean", "reward_std", "clip_fraction", "tokens_per_s",
        "num_trajectories", "num_groups", "dropped_stale", "batch_id", "created_at",
    ),
    "weight_versions": ("event_id", "model", "version", "uri", "base_model", "step", "format", "created_at"),
    "spans": (
        "event_id", "rollout_id", "span_id", "parent_span_id", "name", "kind", "agent_name", "after_seq", "started_at", "ended_at",
        "attributes_json", "error_type", "error_message",
    ),
    "rollout_starts": (
        "rollout_id", "event_id", "task_id", "group_id", "task_type", "split", "input_json", "worker_id", "gateway_id", "started_at",
    ),
    "transitions": (
        "rollout_id", "event_id", "call_ids", "seqs", "merged_calls", "prompt_tokens", "response_masks", "rewards", "model_versions",
        "created_at",
    ),
    "batch_groups": ("event_id", "batch_id", "group_id", "task_id", "trajectories", "min_model_version", "created_at"),
}


def ts(unix_ms: int) -> int:
    """A DateTime64(3) value: the store takes milliseconds since the epoch as they are (no datetime built per row
    only for the driver to turn it back into ticks)."""
    return unix_ms


_STATUS_NAMES = {value: name.removeprefix("ROLLOUT_STATUS_").lower() for name, value in events_pb2.RolloutStatus.items()}


def status_name(status: int) -> str:
    try:
        return _STATUS_NAMES[status]
    except KeyError:  # a status this build does not know: the enum's own error
        return events_pb2.RolloutStatus.Name(status).removeprefix("ROLLOUT_STATUS_").lower()


@dataclass
class RowBuffer:
    """Rows waiting for one batched insert per table, deduplicated by their key within the batch."""

    rows: dict[str, dict[str, tuple]] = field(default_factory=dict)

    def add(self, table: str, key: str, row: tuple) -> None:
        assert len(row) == len(TABLE_COLUMNS[table]), table
        self.rows.setdefault(table, {})[key] = row

    def __len__(self) -> int:
        return sum(len(r) for r in self.rows.values())

    def drain(self) -> dict[str, list[tuple]]:
        out = {table: list(rows.values()) for table, rows in self.rows.items() if rows}
        self.rows = {}
        return out


def add_event_rows(buffer: RowBuffer, event: events_pb2.Event, *, late: bool = False) -> None:
    """Rows for an event as it arrives (calls, spans, starts, agent rewards, feedback, trainer events)."""
    kind = event.WhichOneof("payload")
    if kind == "llm_call":
        c = event.llm_call
        finish = c.completions[0].finish_reason if c.completions else ""
        buffer.add("llm_calls", event.event_id, (
            event.event_id, c.rollout_id, c.call_id, c.seq, c.model, c.model_version, c.agent_name, c.endpoint,
            c.prompt_tokens, c.completion_tokens, c.latency_ms, c.http_status, c.error_class, finish,
            ts(c.started_unix_ms or event.time_unix_ms), c.gateway_id, c.request_json, c.response_json,
            [packed_tokens.pack_ids(comp.token_ids) for comp in c.completions],
            [packed_tokens.pack_logprobs(comp.logprobs) for comp in c.completions], c.prompt_version,
        ))
        return
    at = ts(event.time_unix_ms)
    if kind == "reward":
        r = event.reward
        buffer.add("rewards", event.event_id, (event.event_id, r.rollout_id, r.call_id, r.name, r.value, r.source or "agent", int(late or r.late), at))
    elif kind == "feedback":
        f = event.feedback
        rollout_id = f.rollout_id if f.WhichOneof("target") == "rollout_id" else f.call_id.rsplit("/", 1)[0]
        call_id = f.call_id if f.WhichOneof("target") == "call_id" else ""
        buffer.add("rewards", event.event_id, (event.event_id, rollout_id, call_id, f.name, f.value, "feedback", int(late), at))
    elif kind == "train_step":
        s = event.train_step
        buffer.add("train_steps", event.event_id, (
            event.event_id, s.model, s.step, s.version, s.loss, s.kl, s.reward_mean, s.reward_std, s.clip_fraction,
            s.tokens_per_s, s.num_trajectories, s.num_groups, s.dropped_stale, s.batch_id, at,
        ))
    elif kind == "span":
        sp = event.span
        buffer.add("spans", event.event_id, (
            event.event_id, sp.rollout_id, sp.span_id, sp.parent_span_id, sp.name, sp.kind, sp.agent_name, sp.after_seq,
            ts(sp.start_unix_ms or event.time_unix_ms), ts(sp.end_unix_ms or sp.start_unix_ms or event.time_unix_ms),
            json.dumps(dict(sp.attributes), sort_keys=True) if sp.attributes else "", sp.error.type, sp.error.message,
        ))
    elif kind == "rollout_started":
        r, task = event.rollout_started, event.rollout_started.task
        buffer.add("rollout_starts", r.rollout_id, (
            r.rollout_id, event.event_id, task.task_id, task.group_id, task.task_type, task.split, task.input_json, r.worker_id,
            r.gateway_id, at,
        ))
    elif kind == "weight_version":
        w = event.weight_version
        buffer.add("weight_versions", event.event_id, (event.event_id, w.model, w.version, w.uri, w.base_model, w.step, w.format, at))


def add_trajectory_rows(buffer: RowBuffer, event: events_pb2.Event, function_rewards: dict[str, float]) -> None:
    """Rows for a released trajectory: the rollout, the rewards functions computed, its transitions, the attributed errors."""
    t = event.trajectory
    at = ts(event.time_unix_ms)
    buffer.add("rollouts", t.rollout_id, (
        t.rollout_id, event.event_id, t.task_id, t.group_id, t.task_type, t.split, status_name(t.status), t.reward, t.num_calls,
        len(t.attributions), t.merge_mismatches, t.min_model_version, t.max_model_version, at,
    ))
    for name, value in sorted(function_rewards.items()):
        key = f"{event.event_id}/{name}"
        buffer.add("rewards", key, (key, t.rollout_id, "", name, value, "function", 0, at))
    if t.transitions:
        steps = t.transitions
        buffer.add("transitions", t.rollout_id, (
            t.rollout_id, event.event_id, [x.call_id for x in steps], [x.seq for x in steps], [x.merged_calls for x in steps],
            [len(x.prompt_token_ids) for x in steps], [list(x.response_mask) for x in steps], [x.reward for x in steps],
            [x.model_version for x in steps], at,
        ))
    for i, a in enumerate(t.attributions):
        key = f"{event.event_id}/error/{i}"
        buffer.add("errors", key, (key, t.rollout_id, a.step, a.error_class, a.message, a.stack, a.attributor, t.task_type, t.max_model_version, at))


def add_batch_rows(buffer: RowBuffer, event: events_pb2.Event) -> None:
    """Rows for a training batch the collector emitted: one per group, so a rollout's batch is one join away."""
    b = event.batch
    at = ts(event.time_unix_ms)
    for g in b.groups:
        key = f"{b.batch_id}/{g.group_id}"
        buffer.add("batch_groups", key, (key, b.batch_id, g.group_id, g.task_id, len(g.trajectories), b.min_model_version, at))

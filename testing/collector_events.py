"""Rollout events as the gateway writes them, the collector as a subprocess, and reading its output topics back."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from lightwire import topics
from lightwire.runtime import codec
from lightwire.v1 import events_pb2 as pb
from testing.kafka_reading import read_until_end
from testing.services_fixtures import ServiceProcess, free_port, service_env


def task(group: str, size: int, index: int, split: str = "train") -> pb.Task:
    return pb.Task(task_id=f"task-{group}", group_id=group, task_type="arith", group_size=size, index_in_group=index, split=split,
                   input_json='{"q": "1+1"}', reference_json='{"answer": 2}')


def rollout(rollout_id: str, t: pb.Task, calls: int, declared: int | None = None, reward: float = 1.0) -> list[pb.Event]:
    events = [codec.make_event("gw", event_id=f"{rollout_id}-start", rollout_started=pb.RolloutStarted(rollout_id=rollout_id, task=t))]
    prompt: list[int] = [1, 2, 3]
    for seq in range(1, calls + 1):
        completion = [10 + seq, 20 + seq]
        events.append(codec.make_event("gw", event_id=f"{rollout_id}-call-{seq}", llm_call=pb.LlmCall(
            rollout_id=rollout_id, call_id=f"{rollout_id}/{seq}", seq=seq, model="tiny", model_version=1,
            prompt_token_ids=prompt, prompt_tokens=len(prompt), completion_tokens=2, latency_ms=5.0 * seq, http_status=200,
            completions=[pb.Completion(token_ids=completion, logprobs=[-0.1, -0.2], text="ok", finish_reason="stop")],
        )))
        prompt = prompt + completion + [7]  # the next turn extends this one by one observation token
    events.append(codec.make_event("gw", event_id=f"{rollout_id}-reward", reward=pb.RolloutReward(rollout_id=rollout_id, name="agent", value=reward, source="agent")))
    events.append(codec.make_event("gw", event_id=f"{rollout_id}-finish", rollout_finished=pb.RolloutFinished(
        rollout_id=rollout_id, status=pb.ROLLOUT_STATUS_SUCCEEDED, num_calls=calls if declared is None else declared)))
    return events


def start_collector(bootstrap: str, names: topics.TopicNames, state_dir: Path, **settings) -> ServiceProcess:
    port = free_port()
    env = service_env(bootstrap, names.prefix, state_dir, collector_port=port, **settings)
    return ServiceProcess("collector", env, f"http://127.0.0.1:{port}/healthz", state_dir / f"collector-{port}.log").start()


async def wait_for(bootstrap: str, topic: str, predicate, timeout_s: float = 60.0) -> list:
    deadline = time.monotonic() + timeout_s
    while True:
        records = await read_until_end(bootstrap, topic)
        events = [codec.decode(r.value).event for r in records]
        if predicate(events) or time.monotonic() > deadline:
            return events
        await asyncio.sleep(0.5)


def by_id(events: list[pb.Event], kind: str) -> dict[str, pb.Event]:
    """What a reader sees: records deduplicated by event id."""
    return {e.event_id: e for e in events if e.WhichOneof("payload") == kind}

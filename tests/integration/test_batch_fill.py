"""Every step trains, through the real services: the collector drops groups whose rollouts all scored alike
(LW_COLLECTOR_UNIFORM_GROUPS=drop), the task driver replaces each, and the batch that goes out on lw.batches holds
exactly the groups with a signal. Inference on the tiny model, the gateway, the collector, an agent through the
client; the agent's reward decides which problems teach (a 'teach' problem scores each rollout by its place in
the group, the others score 0 for all)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from lightwire import topics
from lightwire.runtime import codec
from lightwire.runtime.kafka import ensure_topics
from lightwire.tools.tasks.batch_fill import FillPolicy
from lightwire.tools.tasks.driver import TaskDriver, TaskSpec
from lightwire_client import Worker, WorkerConfig
from testing.kafka_reading import read_until_end
from testing.services_fixtures import ServiceProcess, free_port, service_env

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def agent(rollout) -> None:
    rollout.openai_client().chat.completions.create(model="default", messages=[{"role": "user", "content": "Hi."}], max_tokens=2)
    place = rollout.task.index_in_group / max(1, rollout.task.group_size - 1)
    rollout.emit_reward(place if rollout.input["teach"] else 0.0)


def test_uniform_groups_are_replaced_and_the_batch_holds_only_groups_with_a_signal(bootstrap, tmp_path):
    names = topics.TopicNames(f"fill{int(time.time() * 1000) % 10**8}.")
    asyncio.run(ensure_topics(bootstrap, topics.topic_specs(2, names)))
    ports = {k: free_port() for k in ("inf_grpc", "inf_ops", "http", "hub", "collector")}
    started: list[ServiceProcess] = []

    def start(name: str, port: str, **settings) -> None:
        env = service_env(bootstrap, names.prefix, tmp_path, log_level="WARNING", **settings)
        env["OMP_NUM_THREADS"] = "1"
        started.append(ServiceProcess(name, env, f"http://127.0.0.1:{ports[port]}/healthz", tmp_path / f"{name}.log").start(timeout_s=180))

    # Problems in turn: uniform, teaching, uniform, uniform, teaching, ... The batch needs two teaching groups.
    problems = [TaskSpec(f"p{i}", "echo", {"teach": i in (1, 4)}, {}) for i in range(8)]
    try:
        start("inference", "inf_ops", inference_model="tiny-llama", inference_device="cpu", inference_grpc_port=ports["inf_grpc"],
              inference_ops_port=ports["inf_ops"])
        start("gateway", "http", gateway_http_port=ports["http"], gateway_grpc_port=ports["hub"],
              gateway_upstream=f"127.0.0.1:{ports['inf_grpc']}", gateway_acquire_wait_ms=500)
        start("collector", "collector", collector_port=ports["collector"], collector_batch_groups=2, collector_group_timeout_s=120,
              collector_uniform_groups="drop")
        stop = threading.Event()

        async def run_agents() -> None:
            done = asyncio.Event()
            worker = asyncio.create_task(Worker(agent, WorkerConfig(target=f"127.0.0.1:{ports['hub']}", concurrency=4, poll_wait_ms=200)).run(done))
            while not stop.is_set():
                await asyncio.sleep(0.2)
            done.set()
            await worker

        agents = threading.Thread(target=asyncio.run, args=(run_agents(),), daemon=True)
        agents.start()

        async def fill():
            async with TaskDriver(bootstrap, names, group_timeout_s=120) as driver:
                report = await driver.fill(lambda n: driver.draw(problems, n), 3, FillPolicy(groups=2, max_groups=6))
                return report, dict(driver.finished)

        report, finished = asyncio.run(fill())

        async def batches():
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                found = [codec.decode(r.value).event.batch for r in await read_until_end(bootstrap, names.batches)]
                if found:
                    return found
                await asyncio.sleep(0.5)
            raise TimeoutError(started[-1].log_tail())

        found = asyncio.run(batches())
        stop.set()
        agents.join(60)
    finally:
        for process in reversed(started):
            process.stop()
    # p0 and p1 first (p1 teaches), then one at a time in place of each uniform one: p2, p3 (uniform), p4 (teaches).
    assert (report.published, report.useful, report.uniform, report.full) == (5, 2, 3, True)
    assert sorted(g.task_id for g in finished.values()) == [f"p{i}" for i in range(5)]
    [batch] = found
    assert sorted(g.task_id for g in batch.groups) == ["p1", "p4"]
    for group in batch.groups:
        assert sorted(t.reward for t in group.trajectories) == [0.0, 0.5, 1.0]

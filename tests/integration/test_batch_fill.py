"""Every step trains, through the real services: the collector drops groups whose rollouts all scored alike
(LW_COLLECTOR_UNIFORM_GROUPS=drop), the task driver replaces each, and the batch that goes out on lw.batches holds
exactly the groups with a signal; under drop_unsolved (rft) also the groups every rollout solved. Inference on the
tiny model, the gateway, the collector, an agent through the client; the agent's reward decides which problems teach
(a 'teach' problem scores each rollout by its place in the group, a 'solved' one 1 for all, the others 0 for all)."""

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
    rollout.emit_reward({"teach": place, "solved": 1.0}.get(rollout.input["score"], 0.0))


# (mode, what the driver reported: published, useful, uniform; the batch's problems with their sorted rewards)
MODES = {
    # p0 and p1 first (p1 teaches), then one at a time in place of each uniform one: p2 (solved), p3, p4 (teaches).
    "drop": ((5, 2, 3), {"p1": [0.0, 0.5, 1.0], "p4": [0.0, 0.5, 1.0]}),
    # p0 and p1, then p2 in place of p0: solved by all three rollouts, so it is batched and fills the batch.
    "drop_unsolved": ((3, 2, 1), {"p1": [0.0, 0.5, 1.0], "p2": [1.0, 1.0, 1.0]}),
}


@pytest.mark.parametrize("mode", MODES)
def test_uniform_groups_are_replaced_and_the_batch_holds_only_groups_with_a_signal(bootstrap, tmp_path, mode):
    names = topics.TopicNames(f"fill{int(time.time() * 1000) % 10**8}.")
    asyncio.run(ensure_topics(bootstrap, topics.topic_specs(2, names)))
    ports = {k: free_port() for k in ("inf_grpc", "inf_ops", "http", "hub", "collector")}
    started: list[ServiceProcess] = []

    def start(name: str, port: str, **settings) -> None:
        env = service_env(bootstrap, names.prefix, tmp_path, log_level="WARNING", **settings)
        env["OMP_NUM_THREADS"] = "1"
        started.append(ServiceProcess(name, env, f"http://127.0.0.1:{ports[port]}/healthz", tmp_path / f"{name}.log").start(timeout_s=180))

    # Problems in turn: failed, teaching, solved, failed, teaching, ... The batch needs two groups the collector batches.
    scores = ["fail", "teach", "solved", "fail", "teach", "fail", "fail", "fail"]
    problems = [TaskSpec(f"p{i}", "echo", {"score": score}, {}) for i, score in enumerate(scores)]
    try:
        start("inference", "inf_ops", inference_model="tiny-llama", inference_device="cpu", inference_grpc_port=ports["inf_grpc"],
              inference_ops_port=ports["inf_ops"])
        start("gateway", "http", gateway_http_port=ports["http"], gateway_grpc_port=ports["hub"],
              gateway_upstream=f"127.0.0.1:{ports['inf_grpc']}", gateway_acquire_wait_ms=500)
        start("collector", "collector", collector_port=ports["collector"], collector_batch_groups=2, collector_group_timeout_s=120,
              collector_uniform_groups=mode)
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
                policy = FillPolicy(groups=2, max_groups=6, solved_reward=1.0 if mode == "drop_unsolved" else None)
                report = await driver.fill(lambda n: driver.draw(problems, n), 3, policy)
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
    counts, batched = MODES[mode]
    assert (report.published, report.useful, report.uniform, report.full) == (*counts, True)
    assert sorted(g.task_id for g in finished.values()) == [f"p{i}" for i in range(counts[0])]
    [batch] = found
    assert {g.task_id: sorted(t.reward for t in g.trajectories) for g in batch.groups} == batched

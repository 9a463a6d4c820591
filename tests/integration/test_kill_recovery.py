"""At-least-once through crashes, at the grain a user sees it: every call of every rollout.

Agents stream 2,000 rollouts of three calls each through the real gateway (tiny model on the real inference
service) while the test `kill -9`s the collector twice and the gateway once at random moments, restarting each. It
then compares, per rollout, the call ids the client was answered with (200) against the rollout's trajectory on
lw.trajectories and against `llm_calls` in ClickHouse: every call the client saw succeed is in both, none twice.

A call that was cut off by the gateway's kill is not one the client saw succeed; it may or may not be recorded
(its event may have been durable when the process died), so the check is "succeeded ⊆ recorded", never equality.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
import pytest

from lightwire import topics
from lightwire.analytics.store import AnalyticsStore
from lightwire.runtime import codec
from lightwire.runtime.kafka import ensure_topics
from lightwire.v1 import events_pb2 as pb
from lightwire_client.hub import AgentHubClient
from testing.services_fixtures import ServiceProcess, free_port, service_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROLLOUTS = int(os.environ.get("LW_TEST_KILL_ROLLOUTS", "2000"))
CALLS = 3
AGENTS = 24
PARTITIONS = 4
KEY = "kill-test-key"


@dataclass
class Services:
    """inference, gateway and collector as restartable subprocesses on fixed ports of their own."""

    bootstrap: str
    names: topics.TopicNames
    work: Path
    ports: dict[str, int] = field(default_factory=lambda: {k: free_port() for k in ("inf_grpc", "inf_ops", "http", "hub", "collector")})
    procs: dict[str, ServiceProcess] = field(default_factory=dict)

    def __post_init__(self) -> None:
        p, quiet = self.ports, {"log_level": "WARNING"}
        env = lambda **kw: service_env(self.bootstrap, self.names.prefix, self.work, **quiet, **kw)  # noqa: E731
        self.procs = {
            "inference": ServiceProcess("inference", env(inference_model="tiny-llama", inference_device="cpu", inference_grpc_port=p["inf_grpc"],
                                                         inference_ops_port=p["inf_ops"]),
                                        f"http://127.0.0.1:{p['inf_ops']}/healthz", self.work / "inference.log"),
            "gateway": ServiceProcess("gateway", env(gateway_http_port=p["http"], gateway_grpc_port=p["hub"], api_keys=KEY,
                                                     gateway_upstream=f"127.0.0.1:{p['inf_grpc']}"),
                                      f"http://127.0.0.1:{p['http']}/healthz", self.work / "gateway.log"),
            # A rollout timeout well above a restart (about 10-20 s here) and well below the test: a collector that
            # counted its own downtime as the agents' silence would time rollouts out and lose their later calls.
            "collector": ServiceProcess("collector", env(collector_port=p["collector"], collector_rollout_timeout_s=45),
                                        f"http://127.0.0.1:{p['collector']}/healthz", self.work / "collector.log"),
        }

    def start_all(self) -> None:
        self.procs["inference"].start(timeout_s=180)
        self.procs["gateway"].start()
        self.procs["collector"].start()

    def crash(self, name: str) -> float:
        """kill -9 and restart; for the collector, seconds until the new one owns every rollout partition."""
        killed = time.monotonic()
        self.procs[name].kill()
        self.procs[name].start()
        if name != "collector":
            return time.monotonic() - killed
        while len(httpx.get(self.procs[name].health_url, timeout=10).json()["rollout_partitions"]) < PARTITIONS:
            time.sleep(0.1)
        return time.monotonic() - killed

    def stop_all(self) -> None:
        for proc in reversed(list(self.procs.values())):
            proc.stop()


@dataclass
class ClientView:
    """What the agents saw: per rollout, the call ids answered 200, in order."""

    succeeded: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    failed_calls: int = 0
    finished: set[str] = field(default_factory=set)


async def run_agents(services: Services, ids: list[str], view: ClientView) -> None:
    queue: asyncio.Queue[str] = asyncio.Queue()
    for rid in ids:
        queue.put_nowait(rid)
    hub = AgentHubClient(f"127.0.0.1:{services.ports['hub']}", api_key=KEY, timeout_s=5.0)
    await hub.connect()
    base = f"http://127.0.0.1:{services.ports['http']}"
    async with httpx.AsyncClient(base_url=base, headers={"authorization": f"Bearer {KEY}"}, timeout=30.0) as http:
        async def agent() -> None:
            while not queue.empty():
                await one_rollout(hub, http, queue.get_nowait(), view)

        await asyncio.gather(*(agent() for _ in range(AGENTS)))
    await hub.close()


async def until_ok(step, what: str, timeout_s: float = 120.0):
    """Retry a hub step while the gateway is down or restarting; anything else fails the test."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await step()
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) or time.monotonic() > deadline:
                raise AssertionError(f"{what}: {exc.code()} {exc.details()}") from exc
            await asyncio.sleep(0.2)


async def one_rollout(hub: AgentHubClient, http: httpx.AsyncClient, rid: str, view: ClientView) -> None:
    task = pb.Task(task_id=f"task-{rid}", task_type="kill-test", input_json='{"q": "count"}', split="train")
    await until_ok(lambda: hub.start(rid, "kill-test-worker", task), f"StartRollout {rid}")
    done = 0
    while done < CALLS:
        # Distinct prompts: no call extends the previous one, so each call is one transition of its own.
        body = {"model": "default", "max_tokens": 3, "temperature": 1.0,
                "messages": [{"role": "user", "content": f"rollout {rid} question {done}"}]}
        try:
            reply = await http.post(f"/rollouts/{rid}/v1/chat/completions", json=body)
        except httpx.TransportError:
            reply = None
        if reply is None or reply.status_code != 200:
            view.failed_calls += 1
            await asyncio.sleep(0.2)
            continue
        view.succeeded[rid].append(reply.json()["id"].removeprefix("chatcmpl-"))
        done += 1
    await until_ok(lambda: hub.finish(rid, pb.ROLLOUT_STATUS_SUCCEEDED, 0), f"FinishRollout {rid}")
    view.finished.add(rid)


async def crash_at_random_moments(services: Services, view: ClientView, plan: list[tuple[float, str]], log: list[str]) -> None:
    for fraction, name in plan:
        while len(view.finished) < fraction * ROLLOUTS:
            await asyncio.sleep(0.05)
        at = len(view.finished)
        back_s = await asyncio.to_thread(services.crash, name)
        what = "owned every partition again" if name == "collector" else "serving again"
        log.append(f"kill -9 {name} after {at} rollouts, {what} {back_s:.1f}s later")


async def read_trajectories(bootstrap: str, topic: str, want: set[str], timeout_s: float) -> tuple[dict[str, pb.Trajectory], Counter]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    found: dict[str, pb.Trajectory] = {}
    copies: Counter = Counter()
    try:
        deadline = time.monotonic() + timeout_s
        while set(found) < want and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                for record in records:
                    event = codec.decode(record.value).event
                    if event.WhichOneof("payload") == "trajectory":
                        copies[event.event_id] += 1
                        found.setdefault(event.trajectory.rollout_id, event.trajectory)
    finally:
        await consumer.stop()
    return found, copies


def test_kill_9_of_collector_and_gateway_mid_stream_keeps_every_call_the_client_saw_succeed(bootstrap, unique, tmp_path):
    names = topics.TopicNames(f"k{unique}.")
    asyncio.run(ensure_topics(bootstrap, topics.topic_specs(PARTITIONS, names)))
    seed = int(os.environ.get("LW_TEST_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    plan = [(rng.uniform(0.10, 0.30), "collector"), (rng.uniform(0.35, 0.55), "gateway"), (rng.uniform(0.60, 0.80), "collector")]
    ids = [f"kr{unique}-{i:05d}" for i in range(ROLLOUTS)]
    services = Services(bootstrap, names, tmp_path)
    view, log = ClientView(), []
    services.start_all()
    try:
        async def stream() -> None:
            crashes = asyncio.create_task(crash_at_random_moments(services, view, plan, log))
            await run_agents(services, ids, view)
            await crashes

        t0 = time.monotonic()
        asyncio.run(stream())
        streamed_s = time.monotonic() - t0
        trajectories, copies = asyncio.run(read_trajectories(bootstrap, names.trajectories, set(ids), timeout_s=180))
    finally:
        services.stop_all()
    print(f"seed {seed}; {'; '.join(log)}; streamed in {streamed_s:.0f}s; calls the client saw fail: {view.failed_calls}; "
          f"raw duplicate trajectory records: {sum(n - 1 for n in copies.values())}")
    assert len(log) == 3, "every planned crash happened during the stream"
    assert sorted(view.finished) == ids

    missing_rollouts = sorted(set(ids) - set(trajectories))
    assert not missing_rollouts, f"{len(missing_rollouts)} rollouts have no trajectory, e.g. {missing_rollouts[:5]}"
    problems = []
    for rid in ids:
        t = trajectories[rid]
        recorded = Counter(tr.call_id for tr in t.transitions)
        lost = [c for c in view.succeeded[rid] if c not in recorded]
        doubled = [c for c, n in recorded.items() if n > 1]
        if lost or doubled or t.status != pb.ROLLOUT_STATUS_SUCCEEDED:
            problems.append((rid, pb.RolloutStatus.Name(t.status), lost, doubled))
    assert not problems, f"{len(problems)} rollouts lost or doubled calls in their trajectory: {problems[:5]}"

    store = AnalyticsStore(f"chdb://{(tmp_path / 'analytics').resolve()}")
    try:
        rows = store.query("SELECT rollout_id, call_id, count() FROM llm_calls FINAL WHERE rollout_id IN {ids:Array(String)} "
                           "GROUP BY rollout_id, call_id", {"ids": ids})
    finally:
        store.close()
    in_analytics: dict[str, Counter] = defaultdict(Counter)
    for rid, call_id, n in rows:
        in_analytics[rid][call_id] += n
    problems = [(rid, [c for c in view.succeeded[rid] if in_analytics[rid][c] == 0], [c for c, n in in_analytics[rid].items() if n > 1])
                for rid in ids]
    problems = [p for p in problems if p[1] or p[2]]
    assert not problems, f"{len(problems)} rollouts lost or doubled calls in llm_calls: {problems[:5]}"
    assert sum(len(v) for v in view.succeeded.values()) == ROLLOUTS * CALLS

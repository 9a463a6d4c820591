"""At-least-once through crashes, at the grain a user sees it: every call of every rollout.

Agents stream 2,000 rollouts of three calls each through the real gateway (tiny model on the real inference
service) while the test `kill -9`s the collector twice and the gateway once at random moments, restarting each. It
then compares, per rollout, the call ids the client was answered with (200) against the rollout's trajectory on
lw.trajectories and against `llm_calls` in ClickHouse: every call the client saw succeed is in both, none twice.

The same test with a broker killed instead: 500 rollouts (LW_TEST_BROKER_KILL_ROLLOUTS) on a three-broker cluster
(topics and the collector's changelogs in three copies, two in sync for a write), one broker `kill -9`ed at a random
moment and left down to the end, so every check reads from the two that remain.

A call that was cut off by the gateway's kill is not one the client saw succeed; it may or may not be recorded
(its event may have been durable when the process died), so the check is "succeeded ⊆ recorded", never equality.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable
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
from testing.kafka_cluster import describe_replication, kill_leader
from testing.services_fixtures import ServiceProcess, free_port, service_env

# The stream's own watchdog (fail_when_stalled) catches a wedge; the session's 300 s limit would also fail a run that
# is only slow, as both kill tests are when another suite shares the two cores (the 2,000 rollouts took 528 s there).
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1800)]
STALL_S = float(os.environ.get("LW_TEST_KILL_STALL_S", "120"))

ROLLOUTS = int(os.environ.get("LW_TEST_KILL_ROLLOUTS", "2000"))
BROKER_KILL_ROLLOUTS = int(os.environ.get("LW_TEST_BROKER_KILL_ROLLOUTS", "500"))
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
    replication: topics.Replication
    ports: dict[str, int] = field(default_factory=lambda: {k: free_port() for k in ("inf_grpc", "inf_ops", "http", "hub", "collector")})
    procs: dict[str, ServiceProcess] = field(default_factory=dict)

    def __post_init__(self) -> None:
        p = self.ports
        common = {"log_level": "WARNING", "topic_replication": self.replication.factor,
                  "topic_min_insync_replicas": self.replication.min_insync}
        env = lambda **kw: service_env(self.bootstrap, self.names.prefix, self.work, **common, **kw)  # noqa: E731
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

    def restart_after_kill(self, name: str) -> Callable[[], str]:
        def crash() -> str:
            back_s = self.crash(name)
            return f"kill -9 {name}, {'owned every partition again' if name == 'collector' else 'serving again'} {back_s:.1f}s later"

        return crash

    def gateway_metric(self, name: str) -> float:
        text = httpx.get(f"http://127.0.0.1:{self.ports['http']}/metrics", timeout=10).text
        return next(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))

    def stop_all(self) -> None:
        for proc in reversed(list(self.procs.values())):
            proc.stop()


@dataclass
class ClientView:
    """What the agents saw: per rollout, the call ids answered 200, in order."""

    succeeded: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    failed_calls: int = 0
    finished: set[str] = field(default_factory=set)
    slowest_call_s: float = 0.0


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
        started = time.monotonic()
        try:
            reply = await http.post(f"/rollouts/{rid}/v1/chat/completions", json=body)
        except httpx.TransportError:
            reply = None
        if reply is None or reply.status_code != 200:
            view.failed_calls += 1
            await asyncio.sleep(0.2)
            continue
        view.slowest_call_s = max(view.slowest_call_s, time.monotonic() - started)
        view.succeeded[rid].append(reply.json()["id"].removeprefix("chatcmpl-"))
        done += 1
    await until_ok(lambda: hub.finish(rid, pb.ROLLOUT_STATUS_SUCCEEDED, 0), f"FinishRollout {rid}")
    view.finished.add(rid)


# When (the fraction of rollouts finished) and what to crash; the crash returns what it did, for the log.
CrashPlan = list[tuple[float, Callable[[], str]]]


async def crash_at_random_moments(view: ClientView, rollouts: int, plan: CrashPlan, log: list[str]) -> None:
    for fraction, crash in plan:
        while len(view.finished) < fraction * rollouts:
            await asyncio.sleep(0.05)
        at = len(view.finished)
        log.append(f"after {at} rollouts: {await asyncio.to_thread(crash)}")


async def fail_when_stalled(view: ClientView, log: list[str]) -> None:
    """A stream that stops moving fails within STALL_S, naming where it stood; a slow one (a loaded machine) does not."""
    seen, since = -1, time.monotonic()
    while True:
        now = sum(len(calls) for calls in view.succeeded.values())
        if now != seen:
            seen, since = now, time.monotonic()
        elif time.monotonic() - since > STALL_S:
            raise AssertionError(f"no call succeeded for {STALL_S:.0f}s: {now} calls and {len(view.finished)} rollouts "
                                 f"done, {view.failed_calls} calls failed; crashes so far: {log}")
        await asyncio.sleep(1.0)


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


def random_seed() -> int:
    """The seed of the crash moments; LW_TEST_SEED replays a run."""
    return int(os.environ.get("LW_TEST_SEED", random.randrange(1 << 30)))


@dataclass
class KillRun:
    """One streamed run with its crashes: what the client saw and what lw.trajectories holds."""

    ids: list[str]
    view: ClientView
    trajectories: dict[str, pb.Trajectory]
    log: list[str]


def stream_with_crashes(services: Services, ids: list[str], plan: CrashPlan, seed: int) -> KillRun:
    view, log = ClientView(), []
    t0 = time.monotonic()
    services.start_all()
    started_s = time.monotonic() - t0
    try:
        async def stream() -> None:
            crashes = asyncio.create_task(crash_at_random_moments(view, len(ids), plan, log))
            agents = asyncio.create_task(run_agents(services, ids, view))
            watchdog = asyncio.create_task(fail_when_stalled(view, log))
            await asyncio.wait({agents, watchdog}, return_when=asyncio.FIRST_COMPLETED)
            if watchdog.done():
                agents.cancel()
                crashes.cancel()
                watchdog.result()  # raises: the stream stalled
            watchdog.cancel()
            await agents
            await crashes

        t0 = time.monotonic()
        asyncio.run(stream())
        streamed_s = time.monotonic() - t0
        spooled = services.gateway_metric("lw_gateway_events_spooled")
        t0 = time.monotonic()
        trajectories, copies = asyncio.run(read_trajectories(services.bootstrap, services.names.trajectories, set(ids), timeout_s=180))
        read_s = time.monotonic() - t0
    finally:
        t0 = time.monotonic()
        services.stop_all()
        stopped_s = time.monotonic() - t0
    print(f"seed {seed}; services up in {started_s:.0f}s; {'; '.join(log)}; {len(ids)} rollouts streamed in {streamed_s:.0f}s; "
          f"trajectories read in {read_s:.0f}s; services stopped in {stopped_s:.0f}s; calls the client saw fail: "
          f"{view.failed_calls}; slowest call the client saw succeed: {view.slowest_call_s:.1f}s; events through the last "
          f"gateway's spool: {spooled:.0f}; raw duplicate trajectory records: {sum(n - 1 for n in copies.values())}")
    return KillRun(ids, view, trajectories, log)


def assert_every_call_the_client_saw_succeed_is_recorded_once(run: KillRun, analytics_dir: Path) -> None:
    ids, view, trajectories = run.ids, run.view, run.trajectories
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

    store = AnalyticsStore(f"chdb://{(analytics_dir / 'analytics').resolve()}")
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
    assert sum(len(v) for v in view.succeeded.values()) == len(ids) * CALLS


def test_kill_9_of_collector_and_gateway_mid_stream_keeps_every_call_the_client_saw_succeed(bootstrap, unique, tmp_path):
    names = topics.TopicNames(f"k{unique}.")
    asyncio.run(ensure_topics(bootstrap, topics.topic_specs(PARTITIONS, names)))
    seed = random_seed()
    rng = random.Random(seed)
    moments = [(rng.uniform(0.10, 0.30), "collector"), (rng.uniform(0.35, 0.55), "gateway"), (rng.uniform(0.60, 0.80), "collector")]
    ids = [f"kr{unique}-{i:05d}" for i in range(ROLLOUTS)]
    services = Services(bootstrap, names, tmp_path, topics.Replication())
    run = stream_with_crashes(services, ids, [(at, services.restart_after_kill(name)) for at, name in moments], seed)
    assert len(run.log) == 3, "every planned crash happened during the stream"
    assert_every_call_the_client_saw_succeed_is_recorded_once(run, tmp_path)


def test_kill_9_of_a_broker_of_three_mid_stream_keeps_every_call_the_client_saw_succeed(three_brokers, unique, tmp_path):
    cluster, settings = three_brokers, three_brokers.settings
    names = topics.TopicNames(f"kb{unique}.")
    asyncio.run(ensure_topics(settings.bootstrap, topics.topic_specs(PARTITIONS, names, settings.replication())))
    seed = random_seed()
    at = random.Random(seed).uniform(0.30, 0.60)
    killed: list[int] = []

    def kill_a_broker() -> str:
        # The leader of partition 0 of the calls' topic (a quarter of the rollouts): with one copy, their calls would be gone.
        node, led = kill_leader(cluster, names.rollout_events)
        killed.append(node.node_id)
        return f"kill -9 of Kafka node {node.node_id} (leader of {names.rollout_events} partitions {led}), left down"

    ids = [f"kb{unique}-{i:05d}" for i in range(BROKER_KILL_ROLLOUTS)]
    run = stream_with_crashes(Services(settings.bootstrap, names, tmp_path, settings.replication()), ids, [(at, kill_a_broker)], seed)
    assert len(killed) == 1, "the broker was killed during the stream"
    assert not cluster.nodes[killed[0] - 1].process.running(), "the checks ran with the broker down"
    changelog = f"{names.prefix}collector-rollouts-changelog"
    for name, topic in asyncio.run(describe_replication(settings.bootstrap, [names.rollout_events, names.trajectories, changelog])).items():
        assert all(len(r) == 3 for r in topic.replicas.values()) and topic.min_insync == 2, f"{name}: {topic}"
    assert_every_call_the_client_saw_succeed_is_recorded_once(run, tmp_path)

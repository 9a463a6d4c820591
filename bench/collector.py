"""End-to-end collector throughput: call events in, trajectories and ClickHouse rows out.

Runs against a real broker (the test stack's, started if needed; LW_TEST_KAFKA_PORT picks it) with fresh topics per run:
1. one collector process over 4 partitions;
2. two collector processes (one Faust app) over 8 partitions, each with its own chDB path;
3. baseline, after each: a bare aiokafka consumer reading and decoding the same events (the ceiling of any consumer).
With --baseline REV, the one-process run alternates between this checkout and revision REV (--rounds times each,
installed beside this one by bench/revision_env.py), and the medians and their ratio are reported.
The collectors start first and settle their partition assignment; the clock runs from the first event produced to
the last trajectory read back from Kafka and the last call row visible in ClickHouse. The load average is recorded
beside each figure (the machine is shared). Figures go to stdout and bench/results/collector.json.
Usage: python bench/collector.py [--rollouts N] [--baseline REV --rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: E402

from bench.common import show, write_results  # noqa: E402
from lightwire import topics  # noqa: E402
from lightwire.runtime import codec  # noqa: E402
from lightwire.runtime.kafka import EventProducer, ensure_topics  # noqa: E402
from lightwire.tools.stack.local_stack import LocalStack  # noqa: E402
from lightwire.tools.stack.settings import StackSettings  # noqa: E402
from lightwire.v1 import events_pb2 as pb  # noqa: E402
from testing.services_fixtures import ServiceProcess, free_port, service_env  # noqa: E402


def rollout_events(rollout_id: str, calls: int, tokens: int) -> list[pb.Event]:
    task = pb.Task(task_id=f"task-{rollout_id}", group_id=f"g-{rollout_id[:-1]}", group_size=1, split="train")
    out = [codec.make_event("bench", event_id=f"{rollout_id}-s", rollout_started=pb.RolloutStarted(rollout_id=rollout_id, task=task))]
    for seq in range(1, calls + 1):
        call = pb.LlmCall(
            rollout_id=rollout_id, call_id=f"{rollout_id}/{seq}", seq=seq, model="bench", model_version=1,
            prompt_token_ids=list(range(tokens)), prompt_tokens=tokens, completion_tokens=tokens // 4, latency_ms=10.0,
            completions=[pb.Completion(token_ids=list(range(tokens // 4)), logprobs=[-0.5] * (tokens // 4), text="x" * 40, finish_reason="stop")],
        )
        out.append(codec.make_event("bench", event_id=f"{rollout_id}-c{seq}", llm_call=call))
    out.append(codec.make_event("bench", event_id=f"{rollout_id}-f", rollout_finished=pb.RolloutFinished(
        rollout_id=rollout_id, status=pb.ROLLOUT_STATUS_SUCCEEDED, num_calls=calls)))
    out.append(codec.make_event("bench", event_id=f"{rollout_id}-r", reward=pb.RolloutReward(rollout_id=rollout_id, name="agent", value=1.0)))
    return out


def encoded_events(rollouts: int, calls: int, tokens: int) -> list[tuple[bytes, bytes]]:
    out = []
    for i in range(rollouts):
        rid = f"r{i:06d}"
        out.extend((rid.encode(), codec.encode(e)) for e in rollout_events(rid, calls, tokens))
    return out


async def produce(bootstrap: str, names: topics.TopicNames, rollouts: int, calls: int, tokens: int) -> int:
    events = []
    for i in range(rollouts):
        rid = f"r{i:06d}"
        events.extend((rid, e) for e in rollout_events(rid, calls, tokens))
    async with EventProducer(bootstrap, "bench", linger_ms=20) as producer:
        for start in range(0, len(events), 5000):
            await producer.send_many(names.rollout_events, events[start:start + 5000])
    return len(events)


async def produce_encoded(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> float:
    """Sends pre-encoded records (so the clock holds no protobuf building); returns when the first was sent."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=20,
                                max_batch_size=1 << 20, max_request_size=8 << 20)
    await producer.start()
    try:
        t0 = time.monotonic()
        for start in range(0, len(records), 5000):
            futures = [await producer.send(topic, value, key=key, headers=[("content-type", codec.CONTENT_TYPE)])
                       for key, value in records[start:start + 5000]]
            await asyncio.gather(*futures)
        return t0
    finally:
        await producer.stop()


async def count_trajectories(bootstrap: str, names: topics.TopicNames, want: int, timeout_s: float) -> float:
    """Seconds until `want` distinct trajectories were read (measured from the call)."""
    consumer = AIOKafkaConsumer(names.trajectories, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    seen: set[str] = set()
    t0 = time.monotonic()
    try:
        while len(seen) < want:
            if time.monotonic() - t0 > timeout_s:
                raise TimeoutError(f"only {len(seen)} of {want} trajectories within {timeout_s}s")
            for records in (await consumer.getmany(timeout_ms=200, max_records=5000)).values():
                seen.update(r.key for r in records)
        return time.monotonic() - t0
    finally:
        await consumer.stop()


async def bare_consumer_rate(bootstrap: str, topic: str, total: int) -> float:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    n, t0 = 0, time.monotonic()
    try:
        while n < total:
            for records in (await consumer.getmany(timeout_ms=200, max_records=5000)).values():
                for r in records:
                    codec.decode(r.value)
                n += len(records)
        return n / (time.monotonic() - t0)
    finally:
        await consumer.stop()


def wait_rows(ports: list[int], want_calls: int, timeout_s: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = sum(httpx.get(f"http://127.0.0.1:{p}/api/counts", timeout=30).json()["llm_calls"]["n"] for p in ports)
        if got >= want_calls:
            return
        time.sleep(0.1)  # the clock stops at the first poll that sees every row: a coarse poll would add up to its interval
    raise TimeoutError(f"ClickHouse rows incomplete after {timeout_s}s")


COLLECTOR_TUNING: dict = {}


def stage_breakdown(port: int) -> dict:
    """Micro-batch count, total seconds and wall µs per event consumed, per stage, from the collector's /metrics.

    Stages overlap (writes run while the next batch is assembled), so the per-event figures do not add up to the total.
    "analytics" is the inserts' own time on the writer thread (with rows to insert), "produce" the time until the
    broker acknowledged a write's records, "write" both as the batch waited for them (they run side by side).
    """
    import httpx

    out: dict[str, dict[str, float]] = {}
    events = 0.0
    for line in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text.splitlines():
        if line.startswith("lw_collector_events_total{"):
            events += float(line.rsplit(" ", 1)[1])
        for kind in ("count", "sum"):
            prefix = f"lw_collector_stage_seconds_{kind}{{stage=\""
            if line.startswith(prefix):
                stage = line[len(prefix):].split('"')[0]
                out.setdefault(stage, {})[kind] = round(float(line.rsplit(" ", 1)[1]), 3)
    for figures in out.values():
        figures["us_per_event"] = round(figures.get("sum", 0.0) / events * 1e6, 1) if events else 0.0
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc): a figure the other users of the machine disturb less."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_assigned(ports: list[int], partitions: int, timeout_s: float) -> None:
    """Until the processes own every rollout partition between them, each some, and it held for a second."""
    import httpx

    deadline, settled_since = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        owned = [httpx.get(f"http://127.0.0.1:{p}/healthz", timeout=10).json().get("rollout_partitions", []) for p in ports]
        if all(owned) and sorted(sum(owned, [])) == list(range(partitions)):
            settled_since = settled_since or time.monotonic()
            if time.monotonic() - settled_since >= 1.0:
                return
        else:
            settled_since = None
        time.sleep(0.2)
    raise TimeoutError(f"partitions not assigned within {timeout_s}s")


def run_collectors(bootstrap: str, processes: int, partitions: int, rollouts: int, calls: int, tokens: int, work: Path,
                   installation: tuple[str, str, str | None] = (sys.executable, "lightwire.tools.cli", None)) -> dict:
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    names = topics.TopicNames(prefix)
    asyncio.run(ensure_topics(bootstrap, topics.topic_specs(partitions, names)))
    records = encoded_events(rollouts, calls, tokens)
    call_events = rollouts * calls
    procs, ports = [], []
    try:
        t0 = time.monotonic()
        for i in range(processes):
            port = free_port()
            # Every bench rollout scores 1.0: uniform groups are kept, so they batch as in the figures before dynamic sampling.
            env = service_env(bootstrap, prefix, work / f"c{i}", collector_port=port, log_level="WARNING", instance_id=f"collector-{i}",
                              collector_uniform_groups="keep", **COLLECTOR_TUNING)
            procs.append(ServiceProcess("collector", env, f"http://127.0.0.1:{port}/healthz", work / f"collector-{i}.log",
                                        python=installation[0], cli_module=installation[1], cwd=installation[2]).start())
            ports.append(port)
        wait_assigned(ports, partitions, timeout_s=120)
        started = time.monotonic() - t0
        load_before = os.getloadavg()[0]
        cpu_before = [cpu_seconds(p.proc.pid) for p in procs]
        t1 = asyncio.run(produce_encoded(bootstrap, names.rollout_events, records))
        asyncio.run(count_trajectories(bootstrap, names, rollouts, timeout_s=600))
        trajectories_s = time.monotonic() - t1
        wait_rows(ports, call_events, timeout_s=600)
        elapsed = time.monotonic() - t1
        load_after = os.getloadavg()[0]
        cpu = [cpu_seconds(p.proc.pid) - c for p, c in zip(procs, cpu_before)]
        stages = stage_breakdown(ports[0])
    finally:
        for p in procs:
            p.stop()
    baseline = asyncio.run(bare_consumer_rate(bootstrap, names.rollout_events, len(records)))
    return {
        "processes": processes, "partitions": partitions, "rollouts": rollouts, "events": len(records), "call_events": call_events,
        "start_s": round(started, 2), "trajectories_s": round(trajectories_s, 2), "elapsed_s": round(elapsed, 2),
        "call_events_per_s": round(call_events / elapsed), "events_per_s": round(len(records) / elapsed),
        "call_events_per_s_per_process": round(call_events / elapsed / processes),
        "bare_consumer_events_per_s": round(baseline),
        "events_per_s_vs_bare_consumer": round(len(records) / elapsed / baseline, 3),
        "load_average_1m": [round(load_before, 2), round(load_after, 2)],
        "collector_cpu_s": [round(c, 2) for c in cpu],
        "collector_cpu_us_per_event": round(sum(cpu) / len(records) * 1e6, 1),
        "stages_first_process": stages,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=4000)
    parser.add_argument("--calls", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--batch-max", type=int, default=None, help="LW_COLLECTOR_BATCH_MAX for the collectors")
    parser.add_argument("--batch-within", type=float, default=None, help="LW_COLLECTOR_BATCH_WITHIN_S for the collectors")
    parser.add_argument("--baseline", default=None, help="a git revision to measure side by side (one process)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each side with --baseline")
    args = parser.parse_args()
    if args.batch_max:
        COLLECTOR_TUNING["collector_batch_max"] = args.batch_max
    if args.batch_within:
        COLLECTOR_TUNING["collector_batch_within_s"] = args.batch_within
    # The test stack's broker; LW_TEST_KAFKA_PORT picks another (several people benchmarking on one machine).
    port = int(os.environ.get("LW_TEST_KAFKA_PORT", "19092"))
    settings = StackSettings(kafka_port=port, kafka_controller_port=port + 1, kafka_bootstrap=f"127.0.0.1:{port}",
                             state_dir=ROOT / ".lightwire" / ("test-stack" if port == 19092 else f"test-stack-{port}"))
    stack = LocalStack(settings)
    started_here = not stack.kafka.running()
    stack.up(services=[])
    work = Path(tempfile.mkdtemp(prefix="lw-bench-collector-"))
    try:
        if args.baseline:
            return compare_with(args.baseline, args.rounds, settings.bootstrap, args, work)
        one = run_collectors(settings.bootstrap, 1, 4, args.rollouts, args.calls, args.tokens, work)
        two = run_collectors(settings.bootstrap, 2, 8, args.rollouts, args.calls, args.tokens, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if started_here:
            stack.down()
    figures = {"one_process": one, "two_processes": two, "scaling_ratio": round(two["call_events_per_s"] / one["call_events_per_s"], 2),
               "target_call_events_per_s_per_process": 10_000}
    path = write_results("collector", figures)
    show("collector throughput", [
        ("1 process: call events/s", f"{one['call_events_per_s']:,} (load {one['load_average_1m']})"),
        ("1 process: all events/s", f"{one['events_per_s']:,}"),
        ("1 process / bare consumer", f"{one['events_per_s_vs_bare_consumer']}"),
        ("2 processes: call events/s", f"{two['call_events_per_s']:,} (load {two['load_average_1m']})"),
        ("2 processes / 1 process", f"{figures['scaling_ratio']}x"),
        ("bare aiokafka consumer events/s (ceiling)", f"{one['bare_consumer_events_per_s']:,}"),
        ("results", str(path)),
    ])


def compare_with(rev: str, rounds: int, bootstrap: str, args, work: Path) -> None:
    """One process, alternating this checkout and `rev` run by run, so both see the same machine load."""
    from bench.common import median
    from bench.revision_env import revision_python

    sides = {"this checkout": (sys.executable, "lightwire.tools.cli", None), rev: revision_python(rev, work)}
    runs: dict[str, list[dict]] = {name: [] for name in sides}
    for i in range(rounds):
        for name, installation in sides.items():
            run_dir = work / f"run-{i}-{'this' if name == 'this checkout' else 'baseline'}"
            run_dir.mkdir(parents=True)
            runs[name].append(run_collectors(bootstrap, 1, 4, args.rollouts, args.calls, args.tokens, run_dir, installation))
            print(f"round {i + 1}/{rounds} {name}: {runs[name][-1]['call_events_per_s']:,} call events/s", flush=True)
    medians = {name: median([r["call_events_per_s"] for r in rs]) for name, rs in runs.items()}
    cpu = {name: median([r["collector_cpu_us_per_event"] for r in rs]) for name, rs in runs.items()}
    figures = {"baseline_revision": rev, "rounds": rounds, "rollouts": args.rollouts, "calls_per_rollout": args.calls,
               "call_events_per_s_median": medians, "collector_cpu_us_per_event_median": cpu,
               "ratio_this_vs_baseline": round(medians["this checkout"] / medians[rev], 3),
               "runs": {name: [r["call_events_per_s"] for r in rs] for name, rs in runs.items()},
               "load_average_1m": {name: [r["load_average_1m"] for r in rs] for name, rs in runs.items()}}
    path = write_results("collector_vs_baseline", figures)
    show(f"collector throughput, this checkout vs {rev} (1 process, median of {rounds})", [
        *[(f"{name}: call events/s", f"{medians[name]:,} (runs {figures['runs'][name]})") for name in sides],
        *[(f"{name}: collector CPU µs/event", f"{cpu[name]}") for name in sides],
        ("ratio this / baseline", f"{figures['ratio_this_vs_baseline']}"),
        ("results", str(path)),
    ])


if __name__ == "__main__":
    main()

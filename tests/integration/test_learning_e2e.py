"""The loop learns, through the real stack on the tiny model, with every trainer algorithm: an agent calls the gateway,
inference samples, the collector scores each rollout with the built-in `brevity` reward (shorter answers score
higher), the trainer runs GRPO, RFT, DPO or KTO and publishes weight versions that inference reloads. The mean reward
rises, versions advance, and the calls made after a reload carry the new version. One more run has no reward
function at all: a user's thumbs on lw.feedback, sent after each rollout finished, are all KTO learns from.

The tiny model is random: at temperature 1 its next-token distribution is nearly uniform over 49k tokens, and no
handful of GRPO steps can move that mass by character length. At a low sampling temperature (the trainer's logprobs
use the same one) the policy chooses among a few candidates per position, as a trained model does, and a property
of its output becomes learnable within a few steps.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time

from dataclasses import dataclass, field

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from lightwire import topics
from lightwire.runtime import codec
from lightwire.runtime.kafka import ensure_topics
from lightwire_client import Worker, WorkerConfig
from lightwire.tools.tasks.driver import TaskDriver, TaskSpec
from testing.kafka_reading import read_until_end
from testing.services_fixtures import ServiceProcess, free_port, service_env

# Real sample, train, save and reload cycles: about 45 s each on 2 idle cores, far more on a loaded machine.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]



@dataclass(frozen=True)
class Variant:
    """One way of learning from the traffic: the trainer's algorithm and settings, and where the reward comes from."""

    steps: int
    trainer: dict = field(default_factory=dict)
    # Thumbs from a "user" on lw.feedback (plain JSON, after each rollout finished) instead of a reward function.
    feedback: bool = False


# GRPO runs five steps and checks that it skips the batches without signal once the policy has settled; the others
# run three, enough for the reward to rise, with the trainer's own settings but for what brevity needs: RFT keeps
# each group's best reply (no reward reaches the default floor of 1). KTO learns from feedback alone: its user
# gives a thumbs up (1) to replies shorter than SHORT_CHARS characters and a thumbs down (0) to the rest, and the
# default threshold (0.5) makes the thumbs up desirable. (KTO on the brevity reward with threshold 0.6 rose too,
# 0.59 -> 0.72 in three steps: the same loss, so one KTO run keeps the suite's time down.)
VARIANTS = {
    "grpo": Variant(5),
    "rft": Variant(3, {"trainer_rft_mode": "best", "trainer_rft_min_reward": float("-inf")}),
    "dpo": Variant(3),
    "kto-feedback": Variant(3, {"trainer_algorithm": "kto"}, feedback=True),
}
SHORT_CHARS = 60
GROUPS_PER_STEP = 2
GROUP_SIZE = 8
TEMPERATURE = 0.1
MAX_TOKENS = 16
LR = 1e-3


def agent(rollout) -> None:
    # Seeded per rollout, so a run's samples depend only on the weights being served.
    rollout.openai_client().chat.completions.create(
        model="default", messages=[{"role": "user", "content": rollout.input["q"]}], max_tokens=MAX_TOKENS,
        temperature=TEMPERATURE, seed=rollout.input["seed"] * 100 + rollout.task.index_in_group,
    )


async def thumbs_from_a_user(bootstrap: str, names, done: asyncio.Event) -> None:
    """A user who reads each reply and, once its rollout has finished, sends a thumbs up or down to lw.feedback as
    plain JSON: the only reward the policy gets."""
    replies: dict[str, str] = {}
    consumer = AIOKafkaConsumer(names.rollout_events, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await consumer.start()
    await producer.start()
    try:
        while not done.is_set():
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for record in records:
                    event = codec.decode(record.value).event
                    kind = event.WhichOneof("payload")
                    if kind == "llm_call" and event.llm_call.completions:
                        replies[event.llm_call.rollout_id] = event.llm_call.completions[0].text
                    elif kind == "rollout_finished" and event.rollout_finished.rollout_id in replies:
                        rollout_id = event.rollout_finished.rollout_id
                        thumbs = 1.0 if len(replies[rollout_id]) < SHORT_CHARS else 0.0
                        doc = {"rollout_id": rollout_id, "name": "thumbs", "value": thumbs, "user_id": "tester"}
                        await producer.send_and_wait(names.feedback, orjson.dumps(doc), key=rollout_id.encode())
    finally:
        await producer.stop()
        await consumer.stop()


def mean_and_se(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) / math.sqrt(len(values))


@pytest.fixture(params=list(VARIANTS))
def variant(request) -> str:
    return request.param


@pytest.fixture
def learning_stack(bootstrap, tmp_path, variant):
    names = topics.TopicNames(f"learn{int(time.time() * 1000) % 10**8}.")
    asyncio.run(ensure_topics(bootstrap, topics.topic_specs(2, names)))
    ports = {k: free_port() for k in ("inf_grpc", "inf_ops", "http", "hub", "collector", "trainer")}
    common = dict(log_level="WARNING")
    started: list[ServiceProcess] = []

    def start(name: str, health_port: str, **settings) -> None:
        env = service_env(bootstrap, names.prefix, tmp_path, **common, **settings)
        # One torch thread each: on a small shared CPU, OpenMP threads of inference and trainer spin against each other.
        env["OMP_NUM_THREADS"] = "1"
        process = ServiceProcess(name, env, f"http://127.0.0.1:{ports[health_port]}/healthz", tmp_path / f"{name}.log")
        started.append(process)
        process.start(timeout_s=180)

    try:
        start("inference", "inf_ops", inference_model="tiny-llama", inference_device="cpu", inference_grpc_port=ports["inf_grpc"],
              inference_ops_port=ports["inf_ops"])
        start("gateway", "http", gateway_http_port=ports["http"], gateway_grpc_port=ports["hub"],
              gateway_upstream=f"127.0.0.1:{ports['inf_grpc']}", gateway_acquire_wait_ms=500)
        # Uniform groups kept: every step makes one batch, and the test checks the trainer skips those without signal.
        # With feedback, a finished rollout waits for its thumbs before its trajectory goes out.
        rewards = dict(collector_rewards="user_feedback", collector_feedback_grace_s=20) if VARIANTS[variant].feedback else dict(
            collector_rewards="brevity")
        start("collector", "collector", collector_port=ports["collector"], collector_batch_groups=GROUPS_PER_STEP,
              collector_group_timeout_s=600, collector_uniform_groups="keep", **rewards)
        start("trainer", "trainer", trainer_model="tiny-llama", trainer_device="cpu", trainer_ops_port=ports["trainer"], trainer_lr=LR,
              trainer_temperature=TEMPERATURE, trainer_seed=0, trainer_checkpoint_dir=tmp_path / "checkpoints",
              **{"trainer_algorithm": variant.split("-")[0], **VARIANTS[variant].trainer})
        yield names, ports, started
    finally:
        for process in reversed(started):
            process.stop()


def test_a_brevity_reward_rises_versions_advance_and_calls_after_a_reload_carry_the_new_version(learning_stack, bootstrap, variant):
    names, ports, processes = learning_stack
    steps = VARIANTS[variant].steps
    trainer_health = f"http://127.0.0.1:{ports['trainer']}/healthz"
    inference_health = f"http://127.0.0.1:{ports['inf_ops']}/healthz"

    async def wait_for(url: str, key: str, above: int, timeout_s: float = 600.0) -> int:
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=10) as http:
            while time.monotonic() < deadline:
                value = (await http.get(url)).json()[key]
                if value > above:
                    return value
                await asyncio.sleep(0.2)
        raise TimeoutError(f"{url} {key} stayed at {above}:\n" + "\n".join(p.log_tail(20) for p in processes))

    async def loop() -> tuple[list[list[float]], dict[str, int]]:
        step_rewards: list[list[float]] = []
        served_at_publish: dict[str, int] = {}  # group id -> the version inference served when its tasks went out
        done = asyncio.Event()
        worker = asyncio.create_task(
            Worker(agent, WorkerConfig(target=f"127.0.0.1:{ports['hub']}", concurrency=GROUP_SIZE, poll_wait_ms=200)).run(done))
        user = asyncio.create_task(thumbs_from_a_user(bootstrap, names, done)) if VARIANTS[variant].feedback else None
        try:
            async with TaskDriver(bootstrap, names, group_timeout_s=600) as driver:
                version, batches = 1, 0
                for step in range(steps):
                    specs = [(TaskSpec(task_id=f"s{step}g{g}", task_type="chat", input={"q": f"Question {step}.{g}: say something.",
                                                                                         "seed": step * GROUPS_PER_STEP + g}, reference={}),
                              GROUP_SIZE) for g in range(GROUPS_PER_STEP)]
                    before = set(driver.finished)
                    await driver.run(specs, max_groups_in_flight=GROUPS_PER_STEP, model_version=version)
                    new = {gid: g for gid, g in driver.finished.items() if gid not in before}
                    assert all(len(g.rewards) == GROUP_SIZE for g in new.values()), "a group timed out"
                    # What the driver reads back from lw.trajectories names the weights that served each group (the demo
                    # labels its evaluations with it): here the one published before the step, nothing else.
                    assert {v for g in new.values() for v in g.versions} == {version}, [g.versions for g in new.values()]
                    served_at_publish.update({gid: version for gid in new})
                    step_rewards.append([r for g in new.values() for r in g.rewards])
                    # The trainer publishes version + 1 for this step's batch (none for a batch whose groups all scored
                    # alike); inference must serve it before the next step.
                    batches = await wait_for(trainer_health, "batches_done", batches)
                    version = httpx.get(trainer_health, timeout=10).json()["version"]
                    await wait_for(inference_health, "model_version", version - 1)
        finally:
            done.set()
            await asyncio.wait_for(worker, 30)
            if user:
                await asyncio.wait_for(user, 30)
        return step_rewards, served_at_publish

    step_rewards, served_at_publish = asyncio.run(loop())

    # The reward rose: the last two steps against the first, by more than twice the standard error of the difference.
    first_mean, first_se = mean_and_se(step_rewards[0])
    last_mean, last_se = mean_and_se(step_rewards[-2] + step_rewards[-1])
    margin = 2 * math.sqrt(first_se**2 + last_se**2)
    curve = [round(statistics.fmean(r), 3) for r in step_rewards]
    print(f"{variant}: mean reward by step: {curve}; first {first_mean:.3f} ± {first_se:.3f}, last two {last_mean:.3f} ± {last_se:.3f}")
    assert last_mean - first_mean > margin, f"reward by step {curve}: {last_mean:.3f} - {first_mean:.3f} <= {margin:.3f}"

    # Versions advanced one per trained step, strictly, on lw.weights. The tiny policy settles on one reply per prompt
    # within two updates (rewards 0.59, 0.89, then 0.92 with no spread): later batches carry no signal and are skipped.
    skipped = httpx.get(trainer_health, timeout=10).json()["skipped"]
    announced = [codec.decode(r.value).event.weight_version.version for r in asyncio.run(read_until_end(bootstrap, names.weights))]
    assert steps - skipped >= 2 and announced == list(range(2, steps - skipped + 2)), (skipped, announced)

    # Every call of a step's rollouts was served by the version published before that step: after a reload, the new one.
    events = [codec.decode(r.value).event for r in asyncio.run(read_until_end(bootstrap, names.rollout_events))]
    calls = [e.llm_call for e in events if e.WhichOneof("payload") == "llm_call"]
    trajectories = [codec.decode(r.value).event.trajectory for r in asyncio.run(read_until_end(bootstrap, names.trajectories))]
    group_of = {t.rollout_id: t.group_id for t in trajectories if t.group_id in served_at_publish}
    versions_by_group: dict[str, set[int]] = {}
    for c in calls:
        if c.rollout_id in group_of:
            versions_by_group.setdefault(group_of[c.rollout_id], set()).add(c.model_version)
    assert set(versions_by_group) == set(served_at_publish)
    assert {gid: versions_by_group[gid] for gid in served_at_publish} == {gid: {v} for gid, v in served_at_publish.items()}
    # Each published version served the steps after it; the last one serves none when the last batch trained.
    assert sorted(set(served_at_publish.values())) in ([1] + announced, [1] + announced[:-1])

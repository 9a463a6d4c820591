"""Offline training as a user runs it: trajectories on a real topic, `lightwire export` to Parquet, `lightwire
train-offline` of that file, and the running trainer service (tiny model) training every replayed group and
publishing a version per batch; no rollout runs."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from lightwire.runtime import codec
from lightwire.runtime.kafka import EventProducer
from lightwire.tools.export.replay import plan_batches, read_rows, trajectories_from_rows
from testing.cli_run import lightwire
from testing.kafka_reading import read_until_end
from testing.samples import export_trajectory
from testing.services_fixtures import ServiceProcess, free_port, service_env

pytestmark = pytest.mark.integration


def test_an_export_trains_the_running_trainer_with_no_rollouts(tmp_path, bootstrap, collector_env):
    names = collector_env
    sent = [export_trajectory(i, g, reward=[0.0, 1.0, 0.5][(i + g) % 3]) for g in (1, 2, 3) for i in range(3)]

    async def produce():
        async with EventProducer(bootstrap, "tests") as producer:
            await producer.send_many(names.trajectories, [(t.rollout_id, codec.make_event("tests", trajectory=t)) for t in sent])

    asyncio.run(produce())
    env = {**os.environ, "LW_TOPIC_PREFIX": names.prefix, "COLUMNS": "200"}
    out = tmp_path / "traffic"
    done = lightwire("export", "--bootstrap", bootstrap, "--out", str(out), "--format", "parquet", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    export = out.with_name("traffic.parquet")

    port = free_port()
    trainer = ServiceProcess("trainer", service_env(bootstrap, names.prefix, tmp_path, trainer_ops_port=port, trainer_model="tiny-llama",
                                                    trainer_lr=1e-3),
                             f"http://127.0.0.1:{port}/healthz", tmp_path / "trainer.log").start(timeout_s=180)
    try:
        done = lightwire("train-offline", str(export), "--groups-per-batch", "2", "--bootstrap", bootstrap, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "published 2 batches (3 groups, 9 trajectories" in done.stdout

        async def steps_and_weights():
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                steps = [codec.decode(r.value).event.train_step for r in await read_until_end(bootstrap, names.train_steps)]
                weights = [codec.decode(r.value).event.weight_version for r in await read_until_end(bootstrap, names.weights)]
                if len(steps) >= 2 and len(weights) >= 2:
                    return steps, weights
                await asyncio.sleep(0.5)
            raise TimeoutError(trainer.log_tail())

        steps, weights = asyncio.run(steps_and_weights())
    finally:
        trainer.stop()
    plan = plan_batches(trajectories_from_rows(read_rows(export)), groups_per_batch=2)
    assert [s.batch_id for s in steps] == [b.batch_id for b in plan.batches]
    assert [(s.num_groups, s.num_trajectories) for s in steps] == [(2, 6), (1, 3)]
    # Every model token of every call trained: 5 per rollout (the first call's observation token is masked out).
    assert [s.trained_tokens for s in steps] == [30, 15]
    assert all(s.loss != 0.0 and s.tokens_per_s > 0 for s in steps)
    assert [w.version for w in weights] == [2, 3]

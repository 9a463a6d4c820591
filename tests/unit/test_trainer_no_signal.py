"""A batch whose groups all scored alike moves no weight and publishes no version; one with signal does both."""

from __future__ import annotations

import asyncio
from pathlib import Path

from prometheus_client import CollectorRegistry

from lightwire.runtime import codec
from lightwire.v1 import events_pb2 as pb
from lightwire.services.trainer.backend import UpdateMetrics
from lightwire.services.trainer.main import Trainer
from lightwire.services.trainer.settings import TrainerSettings


class RecordingBackend:
    pad_id = 0

    def __init__(self) -> None:
        self.updates = 0

    def update(self, seqs) -> UpdateMetrics:
        self.updates += 1
        return UpdateMetrics(0.5, 0.0, 0.0, 1.0, seqs.model_tokens, 1.0)

    def save(self, directory: Path) -> str:
        (directory / "weights").write_text("w")
        return "full"


class RecordingProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, pb.Event]] = []

    async def send(self, topic: str, key: str, event: pb.Event) -> None:
        self.sent.append((topic, event))


def batch_event(batch_id: str, rewards: list[list[float]]) -> pb.Event:
    batch = pb.TrainingBatch(batch_id=batch_id, min_model_version=1)
    for g, group_rewards in enumerate(rewards):
        group = batch.groups.add(group_id=f"g{g}")
        for i, r in enumerate(group_rewards):
            t = group.trajectories.add(rollout_id=f"{batch_id}-{g}-{i}", reward=r)
            t.transitions.add(prompt_token_ids=[5, 6, 7], response_token_ids=[8, 9], response_mask=[1, 1], response_logprobs=[-1.0, -1.0],
                              reward=r)
    return codec.make_event("tests", batch=batch)


def test_a_batch_without_signal_is_counted_but_not_trained_or_published(tmp_path):
    settings = TrainerSettings(state_dir=tmp_path, trainer_kl_coef=0.0)
    policy, producer = RecordingBackend(), RecordingProducer()
    trainer = Trainer(settings, policy, producer, CollectorRegistry())
    names = settings.topic_names()

    async def feed():
        await trainer.handle(None, batch_event("flat", [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]))
        flat = list(producer.sent)
        await trainer.handle(None, batch_event("mixed", [[0.0, 0.0, 0.0], [0.0, 1.0, 1.0]]))
        return flat, producer.sent[len(flat):]

    flat, mixed = asyncio.run(feed())
    assert [topic for topic, _ in flat] == [names.train_steps]
    assert flat[0][1].train_step.version == 1 and flat[0][1].train_step.step == 1
    assert (trainer.skipped, trainer.step, trainer.batches_done) == (1, 2, 2) and policy.updates == 1
    assert [topic for topic, _ in mixed] == [names.weights, names.train_steps]
    assert mixed[0][1].weight_version.version == 2 and mixed[1][1].train_step.loss == 0.5


def test_with_a_kl_term_a_flat_batch_still_trains(tmp_path):
    settings = TrainerSettings(state_dir=tmp_path, trainer_kl_coef=0.05)
    policy, producer = RecordingBackend(), RecordingProducer()
    trainer = Trainer(settings, policy, producer, CollectorRegistry())
    asyncio.run(trainer.handle(None, batch_event("flat", [[1.0, 1.0]])))
    assert policy.updates == 1 and trainer.version == 2 and trainer.skipped == 0

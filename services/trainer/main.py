"""`lightwire serve trainer`: consumes lw.batches, runs GRPO on the captured tokens, publishes weight versions."""

from __future__ import annotations

import asyncio
import logging
import statistics
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge

from lightwire.runtime import codec
from lightwire.runtime.kafka import ConsumerConfig, EventConsumer, EventProducer
from lightwire.runtime.lifecycle import instance_name, run_service
from lightwire.runtime.ops import serve_ops
from lightwire.v1 import events_pb2
from lightwire.services.trainer import staleness
from lightwire.services.trainer.algorithms import build_objective
from lightwire.services.trainer.backend import TrainerBackend, UpdateMetrics
from lightwire.services.trainer.backend_choice import build_backend
from lightwire.services.trainer.checkpoints import CheckpointStore
from lightwire.services.trainer.collate import collate
from lightwire.services.trainer.settings import TrainerSettings

log = logging.getLogger(__name__)


def resolve_model_dir(settings: TrainerSettings) -> Path:
    candidate = Path(settings.trainer_model)
    if candidate.is_dir():
        return candidate
    from lightwire.model_cache import ensure_model

    return ensure_model(settings.trainer_model, settings.cache_dir)


class Trainer:
    def __init__(self, settings: TrainerSettings, backend: TrainerBackend, producer: EventProducer, registry: CollectorRegistry):
        self.settings = settings
        self.backend = backend
        self.producer = producer
        self.names = settings.topic_names()
        self.store = CheckpointStore(settings.checkpoint_dir(), settings.trainer_keep_checkpoints)
        self.version = max(self.store.versions(), default=1)  # the base weights are version 1
        self.step = 0  # batches trained or skipped
        # Batches whose handling is over (trained and published, skipped, or dropped): what a driver waits on. `step`
        # moves before the new version is written, so reading both then could pair a step with the version before it.
        self.batches_done = 0
        self.trained_tokens = 0
        self.updates_since_publish = 0
        self.dropped_stale = 0
        self.skipped = 0
        self.source = instance_name("trainer", settings)
        # Only to tell a batch without signal (the backend builds its own from the same settings).
        self.objective = build_objective(settings)
        self.updates = Counter("lw_trainer_updates_total", "GRPO updates", registry=registry)
        self.dropped = Counter("lw_trainer_dropped_stale_total", "Batches dropped as too stale", registry=registry)
        self.skipped_counter = Counter("lw_trainer_skipped_total", "Batches without signal (all advantages zero, no KL): no update",
                                       registry=registry)
        self.version_gauge = Gauge("lw_trainer_version", "Weight version last published", registry=registry)
        self.version_gauge.set(self.version)

    async def handle(self, record, event: events_pb2.Event) -> None:
        if event.WhichOneof("payload") != "batch":
            await self.producer.dead_letter(record, f"expected a training batch, got {event.WhichOneof('payload')}", "trainer")
            return
        batch = event.batch
        decision = staleness.decide(batch.min_model_version or self.version, self.version, self.settings.trainer_max_staleness,
                                    self.settings.trainer_stale_policy)
        if not decision.train:
            self.dropped_stale += 1
            self.dropped.inc()
            log.info("dropped a stale batch", extra={"batch_id": batch.batch_id, "lag": decision.lag})
            self.batches_done += 1
            return
        seqs = collate(batch, self.backend.pad_id, self.settings.trainer_scale_by_std, decision.weight)
        updated = self.objective.carries_signal(seqs)
        if not updated:
            # GRPO: every group's rollouts scored alike and there is no KL term (rft: no rollout kept; dpo: no group
            # with a best and a worst): the gradient is exactly zero, yet AdamW would still move the weights along its
            # momentum, by about two thirds of a full step right after a real one. The weights stay, and so does the
            # version: no checkpoint, no reload.
            metrics = UpdateMetrics(0.0, 0.0, 0.0, 1.0, 0, 0.0)
            self.skipped += 1
            self.skipped_counter.inc()
            log.info("no update: the batch carries no signal", extra={"batch_id": batch.batch_id})
        else:
            metrics = await asyncio.to_thread(self.backend.update, seqs)
            self.updates.inc()
            self.updates_since_publish += 1
        self.step += 1
        if self.updates_since_publish >= self.settings.trainer_publish_every:
            await self.publish_weights()
        rewards = [t.reward for g in batch.groups for t in g.trajectories]
        step = events_pb2.TrainStep(
            model=self.settings.trainer_model, step=self.step, version=self.version, loss=metrics.loss, kl=metrics.kl,
            reward_mean=statistics.fmean(rewards) if rewards else 0.0, reward_std=statistics.pstdev(rewards) if rewards else 0.0,
            clip_fraction=metrics.clip_fraction, tokens_per_s=metrics.tokens_per_s, num_trajectories=len(rewards),
            num_groups=len(batch.groups), dropped_stale=self.dropped_stale, batch_id=batch.batch_id,
            trained_tokens=metrics.tokens,
        )
        await self.producer.send(self.names.train_steps, self.settings.trainer_model,
                                 codec.make_event(self.source, event_id=f"step-{batch.batch_id}", train_step=step))
        log.info("batch done", extra={"step": self.step, "version": self.version, "updated": updated,
                                      "loss": round(metrics.loss, 5), "tokens_per_s": round(metrics.tokens_per_s, 1)})
        self.trained_tokens += metrics.tokens
        self.batches_done += 1

    async def publish_weights(self) -> None:
        self.updates_since_publish = 0
        version = self.version + 1
        formats: list[str] = []
        uri = await asyncio.to_thread(self.store.write, version, lambda d: formats.append(self.backend.save(d)))
        self.version = version
        self.version_gauge.set(version)
        announcement = events_pb2.WeightVersion(model=self.settings.trainer_model, version=version, uri=uri,
                                                base_model=self.settings.trainer_model, step=self.step, format=formats[0])
        await self.producer.send(self.names.weights, self.settings.trainer_model,
                                 codec.make_event(self.source, event_id=f"weights-{self.settings.trainer_model}-{version}",
                                                  weight_version=announcement))


async def serve(settings: TrainerSettings, stop: asyncio.Event) -> None:
    model_dir = await asyncio.to_thread(resolve_model_dir, settings)
    import torch

    torch.manual_seed(settings.trainer_seed)
    if settings.trainer_threads > 0:
        torch.set_num_threads(settings.trainer_threads)
    backend = await asyncio.to_thread(build_backend, settings, model_dir)
    names = settings.topic_names()
    registry = CollectorRegistry()
    async with EventProducer(settings.kafka_bootstrap, instance_name("trainer", settings), dead_letter_topic=names.dead_letter) as producer:
        trainer = Trainer(settings, backend, producer, registry)
        consumer = EventConsumer(ConsumerConfig(settings.kafka_bootstrap, f"{settings.topic_prefix}trainer", (names.batches,), name="trainer"), producer)
        await consumer.start()

        async def health() -> dict:
            return {"version": trainer.version, "step": trainer.step, "batches_done": trainer.batches_done,
                    "dropped_stale": trainer.dropped_stale, "skipped": trainer.skipped,
                    "trained_tokens": trainer.trained_tokens}

        try:
            await asyncio.gather(consumer.run(trainer.handle, stop),
                                 serve_ops(health, registry, settings.trainer_host, settings.trainer_ops_port, stop))
        finally:
            await consumer.stop()


def main() -> None:
    settings = TrainerSettings()
    run_service("trainer", settings, lambda stop: serve(settings, stop))


if __name__ == "__main__":
    main()

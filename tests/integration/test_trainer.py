"""The trainer on the tiny model: its logprobs match the inference engine's, and the service trains a batch from
the real broker, writes a checkpoint and announces a weight version that the engine loads."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from lightwire import topics
from lightwire.runtime import codec
from lightwire.runtime.kafka import EventProducer, ensure_topics
from lightwire.settings import CommonSettings
from lightwire.v1 import events_pb2 as pb
from lightwire.services.inference.engine import GenerationRequest, SamplingOptions
from lightwire.services.inference.hf_engine import HfEngine
from lightwire.model_cache import ensure_model
from lightwire.services.trainer.collate import collate
from lightwire.services.trainer.torch_backend import TorchBackend
from testing.kafka_reading import read_until_end
from testing.services_fixtures import ServiceProcess, free_port, service_env

pytestmark = pytest.mark.integration

LOGPROB_TOLERANCE = 1e-4  # float32 on the CPU; batched (left-padded) sampling vs one right-padded forward


@pytest.fixture(scope="module")
def tiny() -> Path:
    return ensure_model("tiny-llama", CommonSettings().cache_dir)


async def sample_batch(model_dir: Path, groups: int = 2, size: int = 4) -> pb.TrainingBatch:
    """A real batch: completions sampled by the engine, each with a different reward (so advantages are non-zero)."""
    engine = HfEngine(model_dir, "tiny-llama", device="cpu")
    await engine.start()
    try:
        batch = pb.TrainingBatch(batch_id=f"b-{time.time_ns()}", min_model_version=1)
        for g in range(groups):
            prompt = engine.tokenizer.apply_chat_template([{"role": "user", "content": f"Say something about {g}."}],
                                                          add_generation_prompt=True, tokenize=True, return_dict=False)
            result = await engine.generate(GenerationRequest(tuple(prompt), SamplingOptions(temperature=1.0, max_tokens=16, n=size, seed=g)))
            group = batch.groups.add(group_id=f"g{g}", task_id=f"t{g}")
            for c in result.completions:
                reward = float(c.index) / size
                t = group.trajectories.add(rollout_id=f"r{g}-{c.index}", group_id=f"g{g}", reward=reward, min_model_version=1)
                t.transitions.add(prompt_token_ids=result.prompt_token_ids, response_token_ids=c.token_ids,
                                  response_mask=[1] * len(c.token_ids), response_logprobs=c.logprobs, reward=reward, model_version=1)
        return batch
    finally:
        await engine.close()


def test_trainer_logprobs_match_the_inference_engine(tiny):
    batch = asyncio.run(sample_batch(tiny, groups=2, size=3))
    policy = TorchBackend(tiny, device="cpu")
    seqs = collate(batch, policy.pad_id)
    import torch

    with torch.no_grad():
        logprobs = policy.sequence_logprobs(seqs)
    mask = seqs.response_mask.bool()
    diff = (logprobs[mask] - seqs.behaviour_logprobs[mask]).abs()
    assert mask.sum() > 20
    assert float(diff.max()) < LOGPROB_TOLERANCE, f"max |trainer - engine| = {float(diff.max()):.2e}"


def test_gradient_checkpointing_gives_the_same_update(tiny):
    """Recomputing activations in the backward pass is a memory trade only: the weights after one update agree."""

    batch = asyncio.run(sample_batch(tiny, groups=2, size=3))
    # Both per row: a checkpointed model keeps no cache to share a prefix through, and this compares checkpointing alone.
    plain, checkpointed = (TorchBackend(tiny, device="cpu", lr=1e-3, micro_batch=2, gradient_checkpointing=flag, shared_prefix=False)
                           for flag in (False, True))
    seqs = collate(batch, plain.pad_id)
    before = {n: p.detach().clone() for n, p in plain.model.named_parameters()}
    plain.update(seqs)
    checkpointed.update(seqs)
    moved = max(float((p.detach() - before[n]).abs().max()) for n, p in plain.model.named_parameters())
    gap = max(float((p.detach() - q.detach()).abs().max()) for p, q in zip(plain.model.parameters(), checkpointed.model.parameters()))
    assert checkpointed.model.is_gradient_checkpointing and not plain.model.is_gradient_checkpointing
    assert moved > 1e-4 and gap < 1e-6, (moved, gap)


def seeded_backend(tiny, lora_rank: int | None, shared_prefix: bool) -> TorchBackend:
    import torch

    torch.manual_seed(0)  # the same random LoRA A matrices in both
    return TorchBackend(tiny, device="cpu", lr=1e-3, micro_batch=6, lora_rank=lora_rank, shared_prefix=shared_prefix)


def test_the_shared_prefix_gives_the_same_logprobs_and_the_same_gradient(tiny):
    """Computing the prompt tokens a micro-batch shares once is exact: logprobs and the update's gradient agree with
    the per-row forward to float rounding, full and LoRA. (Gradients, not weights after a step: AdamW's first step
    moves every weight by about lr whatever its gradient's size, so rounding in a near-zero gradient shows there.)"""
    import torch

    from lightwire.services.trainer.shared_prefix import common_prefix_length

    batch = asyncio.run(sample_batch(tiny, groups=2, size=3))
    for lora_rank in (None, 4):
        shared, per_row = (seeded_backend(tiny, lora_rank, flag) for flag in (True, False))
        seqs = collate(batch, shared.pad_id)
        # The chat template's preamble is every row's; the two groups' prompts part after it.
        assert common_prefix_length(seqs.input_ids, seqs.attention_mask, seqs.first_response_position()) >= 16
        with torch.no_grad():
            gap = float((shared.sequence_logprobs(seqs) - per_row.sequence_logprobs(seqs)).abs().max())
        assert gap < 1e-5, (lora_rank, gap)
        grads = []
        for backend in (shared, per_row):
            backend.optimizer.zero_grad(set_to_none=True)
            backend._accumulate(seqs, float(seqs.weights.sum()))  # noqa: SLF001 (the update's backward passes, before its step)
            grads.append({n: p.grad.clone() for n, p in backend.model.named_parameters() if p.grad is not None})
        assert set(grads[0]) == set(grads[1]) and grads[1]
        scale = max(float(g.abs().max()) for g in grads[1].values())
        apart = max(float((grads[0][n] - grads[1][n]).abs().max()) for n in grads[1])
        assert scale > 0 and apart < 1e-4 * scale, (lora_rank, scale, apart)


def test_the_trainer_service_trains_a_batch_and_the_engine_loads_the_new_version(tiny, bootstrap, unique, tmp_path):
    names = topics.TopicNames(f"t{unique}.")
    asyncio.run(ensure_topics(bootstrap, topics.topic_specs(2, names)))
    batch = asyncio.run(sample_batch(tiny))
    port = free_port()
    env = service_env(bootstrap, names.prefix, tmp_path, trainer_ops_port=port, trainer_model="tiny-llama", trainer_lr=1e-3)
    trainer = ServiceProcess("trainer", env, f"http://127.0.0.1:{port}/healthz", tmp_path / "trainer.log").start(timeout_s=180)
    try:
        async def produce_and_wait():
            async with EventProducer(bootstrap, "tests") as producer:
                await producer.send(names.batches, "g0", codec.make_event("tests", batch=batch))
                await producer.send_raw(names.batches, b"k", b"not a batch")
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                weights = [codec.decode(r.value).event.weight_version for r in await read_until_end(bootstrap, names.weights)]
                steps = [codec.decode(r.value).event.train_step for r in await read_until_end(bootstrap, names.train_steps)]
                if weights and steps:
                    return weights, steps
                await asyncio.sleep(0.5)
            raise TimeoutError(trainer.log_tail())

        weights, steps = asyncio.run(produce_and_wait())
        letters = asyncio.run(read_until_end(bootstrap, names.dead_letter))
    finally:
        trainer.stop()
    [announced] = weights
    assert (announced.version, announced.format, announced.model) == (2, "full", "tiny-llama")
    [step] = steps
    assert step.version == 2 and step.num_trajectories == 8 and step.tokens_per_s > 0
    assert [codec.decode(r.value).event.dead_letter.reason for r in letters][0].startswith("not a lightwire.v1.Event protobuf")
    assert step.loss != 0.0

    async def reload_changes_output():
        engine = HfEngine(tiny, "tiny-llama", device="cpu")
        await engine.start()
        try:
            prompt = tuple(engine.tokenizer.apply_chat_template([{"role": "user", "content": "hello"}], add_generation_prompt=True,
                                                                tokenize=True, return_dict=False))
            greedy = SamplingOptions(temperature=0, max_tokens=12)
            before = await engine.generate(GenerationRequest(prompt, greedy))
            await engine.load_weights(announced.version, announced.uri, announced.format)
            after = await engine.generate(GenerationRequest(prompt, greedy))
            return before, after
        finally:
            await engine.close()

    before, after = asyncio.run(reload_changes_output())
    assert (before.model_version, after.model_version) == (1, 2)
    assert before.completions[0].logprobs != after.completions[0].logprobs

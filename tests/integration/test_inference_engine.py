"""The hf engine on the real tiny model: exact logprobs, batching, seeds, stop handling, weight reloads."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
import pytest_asyncio
import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM

from lightwire.settings import CommonSettings
from lightwire.services.inference.engine import ContextLengthExceeded, GenerationRequest, SamplingOptions, StaleWeights, WeightsNotFound
from lightwire.services.inference.hf_engine import HfEngine
from lightwire.services.inference.prefix_cache import common_prefix
from lightwire.model_cache import TINY, ensure_model

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tiny_dir() -> Path:
    return ensure_model(TINY, CommonSettings().cache_dir)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def engine(tiny_dir):
    engine = HfEngine(tiny_dir, TINY, device="cpu", max_batch=16, batch_wait_s=0.02)
    await engine.start()
    yield engine
    await engine.close()


def chat_ids(engine: HfEngine, text: str) -> tuple[int, ...]:
    ids = engine.tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True, return_dict=False)
    return tuple(ids)


def teacher_forced_logprobs(model, prompt: tuple[int, ...], completion: list[int], temperature: float) -> list[float]:
    ids = torch.tensor([list(prompt) + completion])
    with torch.inference_mode():
        logits = model(input_ids=ids).logits[0].float()
    logp = torch.log_softmax(logits / temperature, dim=-1)
    start = len(prompt) - 1  # logits at position i predict token i+1
    return [logp[start + i, tok].item() for i, tok in enumerate(completion)]


async def test_logprobs_match_a_teacher_forced_pass(engine, tiny_dir):
    reference = AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.float32).eval()
    short, long = chat_ids(engine, "hi"), chat_ids(engine, "a much longer prompt, so the short one is left-padded in the batch")
    opts = SamplingOptions(temperature=0.7, max_tokens=12, n=2, seed=11)
    results = await asyncio.gather(engine.generate(GenerationRequest(short, opts)), engine.generate(GenerationRequest(long, opts)))
    for prompt, result in zip((short, long), results):
        assert result.prompt_token_ids == list(prompt)
        for c in result.completions:
            assert len(c.token_ids) == len(c.logprobs) == 12 and c.finish_reason == "length"
            expected = teacher_forced_logprobs(reference, prompt, c.token_ids, 0.7)
            assert max(abs(a - b) for a, b in zip(c.logprobs, expected)) < 1e-4


async def test_a_prompt_starting_like_a_cached_one_prefills_only_the_rest_with_exact_logprobs(engine, tiny_dir):
    reference = AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.float32).eval()

    def with_examples(question: str) -> tuple[int, ...]:
        messages = [{"role": "system", "content": "Worked examples: two plus two is four. " * 12}, {"role": "user", "content": question}]
        return tuple(engine.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False))

    first, *later = [with_examples(q) for q in ("what is 3 + 4?", "what is 10 - 2?", "and 6 * 7, a longer question")]
    opts = SamplingOptions(temperature=0.7, max_tokens=12, seed=3)
    results = [await engine.generate(GenerationRequest(first, opts))]
    before = replace(engine.prefix_stats)
    results += await asyncio.gather(*(engine.generate(GenerationRequest(p, opts)) for p in later))
    shared = [common_prefix(first, p) for p in later]
    assert min(shared) > 100, "the system message is the shared part"
    # Both later prompts (one batch, so neither sees the other's KV) took the first one's prefix and prefilled the rest.
    assert engine.prefix_stats.hits - before.hits == 2
    assert engine.prefix_stats.reused_tokens - before.reused_tokens == sum(shared)
    assert engine.prefix_stats.prefilled_tokens - before.prefilled_tokens == sum(len(p) for p in later) - sum(shared)
    for prompt, result in zip((first, *later), results, strict=True):
        c = result.completions[0]
        expected = teacher_forced_logprobs(reference, prompt, c.token_ids, 0.7)
        assert max(abs(a - b) for a, b in zip(c.logprobs, expected, strict=True)) < 1e-4


async def test_eight_concurrent_requests_batch_and_match_one_at_a_time(engine):
    prompts = [chat_ids(engine, f"question number {i} " * (i + 1)) for i in range(8)]
    greedy = SamplingOptions(temperature=0.0, max_tokens=10)
    alone = [await engine.generate(GenerationRequest(p, greedy)) for p in prompts]
    before = engine.batches_run
    together = await asyncio.gather(*(engine.generate(GenerationRequest(p, greedy)) for p in prompts))
    assert engine.batches_run - before == 1, "the 8 concurrent requests should share one batch"
    assert [r.completions[0].token_ids for r in together] == [r.completions[0].token_ids for r in alone]


async def test_late_requests_join_a_running_batch_and_match_alone(engine):
    first, late = chat_ids(engine, "a long answer please"), [chat_ids(engine, f"late question {i}") for i in range(3)]
    alone_first = await engine.generate(GenerationRequest(first, SamplingOptions(temperature=0.0, max_tokens=300)))
    seeded = SamplingOptions(temperature=0.9, max_tokens=10, seed=21)
    alone_late = [await engine.generate(GenerationRequest(p, seeded)) for p in late]
    batches, joins = engine.batches_run, engine.joins
    running = asyncio.create_task(engine.generate(GenerationRequest(first, SamplingOptions(temperature=0.0, max_tokens=300))))
    await asyncio.sleep(0.1)  # the first batch (about 1 s of decoding) is a few steps in
    joined = await asyncio.gather(*(engine.generate(GenerationRequest(p, seeded)) for p in late))
    assert (await running).completions[0].token_ids == alone_first.completions[0].token_ids
    assert [r.completions[0].token_ids for r in joined] == [r.completions[0].token_ids for r in alone_late]
    assert engine.batches_run - batches == 1 and engine.joins - joins >= 1, "late requests should join, not wait"


async def test_seeded_sampling_is_reproducible(engine):
    prompt = chat_ids(engine, "tell me a story")
    opts = SamplingOptions(temperature=1.0, max_tokens=16, n=3, seed=1234)
    first = await engine.generate(GenerationRequest(prompt, opts))
    again = await engine.generate(GenerationRequest(prompt, opts))
    other = await engine.generate(GenerationRequest(prompt, SamplingOptions(temperature=1.0, max_tokens=16, n=3, seed=99)))
    tokens = [c.token_ids for c in first.completions]
    assert tokens == [c.token_ids for c in again.completions]
    assert tokens != [c.token_ids for c in other.completions]
    assert len({tuple(t) for t in tokens}) == 3, "the n sequences of one request differ"


async def test_stop_string_cuts_text_and_finishes(engine):
    prompt = chat_ids(engine, "hello")
    free = await engine.generate(GenerationRequest(prompt, SamplingOptions(temperature=0.0, max_tokens=20)))
    text = free.completions[0].text
    assert len(text) > 3
    stop = text[2:4]
    cut = await engine.generate(GenerationRequest(prompt, SamplingOptions(temperature=0.0, max_tokens=20, stop=(stop,))))
    c = cut.completions[0]
    assert c.finish_reason == "stop"
    assert c.text == text[: text.find(stop)]
    assert c.token_ids == free.completions[0].token_ids[: len(c.token_ids)]


async def test_streaming_deltas_add_up_to_the_text(engine):
    prompt = chat_ids(engine, "stream please")
    deltas, final = [], None
    async for item in engine.generate_stream(GenerationRequest(prompt, SamplingOptions(temperature=0.0, max_tokens=15))):
        if hasattr(item, "completions"):
            final = item
        else:
            deltas.append(item.text)
    assert final is not None and "".join(deltas) == final.completions[0].text


async def test_prompt_longer_than_the_context_is_rejected(engine):
    with pytest.raises(ContextLengthExceeded):
        await engine.generate(GenerationRequest((100,) * engine.max_context, SamplingOptions(max_tokens=1)))


async def test_weight_reload_full_and_lora(engine, tiny_dir, tmp_path):
    prompt = chat_ids(engine, "what changed?")
    greedy = SamplingOptions(temperature=0.0, max_tokens=8)
    base = await engine.generate(GenerationRequest(prompt, greedy))
    assert base.model_version == engine.model_version

    # A "trained" checkpoint: the same architecture with other random weights, saved as a bare state dict.
    torch.manual_seed(5)
    trained = AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.float32)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    save_file({k: v.contiguous() for k, v in trained.state_dict().items() if k != "lm_head.weight"}, tmp_path / "model.safetensors")

    v = engine.model_version + 1
    # A long request in flight across the reload finishes on the version it started with.
    in_flight = asyncio.create_task(engine.generate(GenerationRequest(prompt, SamplingOptions(temperature=0.0, max_tokens=300))))
    await asyncio.sleep(0.1)
    await engine.load_weights(v, f"file://{tmp_path}", "full")
    after = await engine.generate(GenerationRequest(prompt, greedy))
    assert (await in_flight).model_version == v - 1
    assert after.model_version == v == engine.model_version
    assert after.completions[0].token_ids != base.completions[0].token_ids

    await engine.load_weights(v, f"file://{tmp_path}", "full")  # a re-delivered announcement is a no-op
    with pytest.raises(StaleWeights):
        await engine.load_weights(v - 1, f"file://{tmp_path}", "full")
    with pytest.raises(WeightsNotFound):
        await engine.load_weights(v + 1, str(tmp_path / "missing"), "full")

    from peft import LoraConfig, get_peft_model

    torch.manual_seed(6)
    lora_config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)  # random B: a visible change
    lora = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_dir), lora_config)
    lora.save_pretrained(tmp_path / "adapter")
    await engine.load_weights(v + 1, str(tmp_path / "adapter"), "lora")
    with_lora = await engine.generate(GenerationRequest(prompt, greedy))
    assert with_lora.model_version == v + 1
    assert with_lora.completions[0].token_ids != base.completions[0].token_ids

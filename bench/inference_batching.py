"""Tokens/s of the hf engine at batch 1 vs batch N: `python -m bench.inference_batching --model smollm2-135m-instruct`."""

from __future__ import annotations

import argparse
import asyncio
import time

from lightwire.settings import CommonSettings
from lightwire.services.inference.engine import GenerationRequest, SamplingOptions
from lightwire.services.inference.hf_engine import HfEngine
from lightwire.model_cache import ensure_model


async def measure(model: str, batch: int, max_tokens: int) -> None:
    engine = HfEngine(ensure_model(model, CommonSettings().cache_dir), model, max_batch=max(batch, 1))
    await engine.start()
    tok = engine.tokenizer
    chats = [[{"role": "user", "content": f"Write a short poem about the number {i}."}] for i in range(batch)]
    prompts = [tuple(tok.apply_chat_template(c, add_generation_prompt=True, tokenize=True, return_dict=False)) for c in chats]
    # Sampling without stop: every sequence runs to max_tokens, so both runs decode the same number of tokens.
    opts = SamplingOptions(temperature=1.0, max_tokens=max_tokens, seed=0)
    await engine.generate(GenerationRequest(prompts[0], SamplingOptions(max_tokens=4)))  # warm-up
    t0 = time.perf_counter()
    for p in prompts:
        await engine.generate(GenerationRequest(p, opts))
    one = time.perf_counter() - t0
    t0 = time.perf_counter()
    results = await asyncio.gather(*(engine.generate(GenerationRequest(p, opts)) for p in prompts))
    together = time.perf_counter() - t0
    tokens = sum(len(r.completions[0].token_ids) for r in results)
    print(f"{model}: {batch} requests x {max_tokens} tokens; one at a time {tokens / one:.1f} tok/s ({one:.2f}s), "
          f"batched {tokens / together:.1f} tok/s ({together:.2f}s)")
    await engine.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=32)
    args = parser.parse_args()
    asyncio.run(measure(args.model, args.batch, args.max_tokens))


if __name__ == "__main__":
    main()

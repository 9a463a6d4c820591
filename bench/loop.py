"""Where one demo training step's time goes on SmolLM2-135M: generating the step's rollouts, the update, the
checkpoint and the reload into inference, for full fine-tuning and LoRA, with and without the shared-prefix
computation (services/trainer/shared_prefix.py), side by side in one run.

The step is the demo's: 4 problems x 4 rollouts, the arithmetic agent's real prompt (system message, two worked
examples, the calculator tool, the question: about 550 tokens through the chat template), sampled at 0.7 with up to
48 new tokens by the hf engine in one continuous batch. The update trains on exactly those sampled tokens with
seeded 0/1 rewards, at the demo's learning rate and micro-batch. The checkpoint is the trainer's (an atomic
directory, full weights or the adapter) and the reload is the engine's `load_weights` of it. Not measured here:
the agent, gateway and Kafka around generation (bench/gateway.py and bench/collector.py measure those).

Generation is measured with the engine's prefix cache (services/inference/prefix_cache.py) and without it, each
step on its own problems. A step here is the update, the next step's generation on the weights before the update, the checkpoint and the
reload. Overlap ("full, shared prefix, overlapped"): the update runs while the engine generates (staleness one
version, as LW_TRAINER_MAX_STALENESS bounds it); the others run them one after the other. `step_s` is the wall time. Here both
run in one process on the same cores (in the stack they are two processes with their own threads), so it measures
what the cores can give to both at once, not a scheduling artefact of the bench.

Medians of --repeats runs after one warm-up each; figures go to stdout and bench/results/loop.json.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))

import torch  # noqa: E402

from bench.common import show, write_results  # noqa: E402
from lightwire.model_cache import ensure_model  # noqa: E402
from lightwire.settings import CommonSettings  # noqa: E402
from lightwire.v1 import events_pb2 as pb  # noqa: E402

GROUPS, GROUP_SIZE, MAX_TOKENS, TEMPERATURE, LR, MICRO_BATCH = 4, 4, 48, 0.7, 3e-5, 8
CONFIGS = ("full, per row", "full, shared prefix", "lora, per row", "lora, shared prefix", "full, shared prefix, overlapped")


def demo_prompts(tokenizer, groups: int, seed: int) -> list[list[int]]:
    """The first-call prompts of `groups` train problems drawn with `seed`: every step its own questions, so the
    engine's prefix cache reuses the shared system message and examples, as in the demo, never a whole prompt."""
    from arith_agent import CALCULATOR, EXAMPLE, SYSTEM
    from lightwire.services.inference.chat import ChatTurn, render_prompt
    from lightwire.tools.tasks.arithmetic import generate

    problems = [p for p in generate(n_train=groups, n_eval=0, seed=seed) if p.split == "train"][:groups]
    prompts = []
    for p in problems:
        messages = [{"role": "system", "content": SYSTEM}, *EXAMPLE, {"role": "user", "content": p.question}]
        turns = [ChatTurn(role=m["role"], content=m.get("content") or "", tool_calls=tuple(m.get("tool_calls", ())),
                          tool_call_id=m.get("tool_call_id", "")) for m in messages]
        prompts.append(render_prompt(tokenizer, turns, [CALCULATOR]))
    return prompts


async def generate_step(engine, seed: int):
    from lightwire.services.inference.engine import GenerationRequest, SamplingOptions

    prompts = demo_prompts(engine.tokenizer, GROUPS, seed)
    t0 = time.perf_counter()
    results = await asyncio.gather(*(engine.generate(GenerationRequest(tuple(p), SamplingOptions(
        temperature=TEMPERATURE, max_tokens=MAX_TOKENS, n=GROUP_SIZE, seed=seed * 100 + g))) for g, p in enumerate(prompts)))
    return time.perf_counter() - t0, results


def batch_of(results, seed: int) -> pb.TrainingBatch:
    rng = random.Random(seed)
    batch = pb.TrainingBatch(batch_id=f"bench-{seed}", min_model_version=1)
    for g, result in enumerate(results):
        group = batch.groups.add(group_id=f"g{g}", task_id=f"t{g}")
        for c in result.completions:
            reward = float(rng.random() < 0.5)
            t = group.trajectories.add(rollout_id=f"r{g}-{c.index}", group_id=f"g{g}", reward=reward, min_model_version=1)
            t.transitions.add(prompt_token_ids=result.prompt_token_ids, response_token_ids=c.token_ids,
                              response_mask=[1] * len(c.token_ids), response_logprobs=c.logprobs, reward=reward, model_version=1)
    return batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--results", default="loop", help="bench/results/<name>.json (a subset of --configs: another name).")
    parser.add_argument("--configs", default="|".join(CONFIGS), help="Which of them to run, separated by '|' (the first is the baseline).")
    args = parser.parse_args()
    configs = [c.strip() for c in args.configs.split("|") if c.strip()]
    if not configs or set(configs) - set(CONFIGS):
        parser.error(f"--configs are some of {' | '.join(CONFIGS)}")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model_dir = ensure_model(args.model, CommonSettings().cache_dir)

    from lightwire.services.inference.hf_engine import HfEngine
    from lightwire.services.trainer.checkpoints import CheckpointStore
    from lightwire.services.trainer.collate import collate
    from lightwire.services.trainer.grpo import LossConfig
    from lightwire.services.trainer.shared_prefix import common_prefix_length
    from lightwire.services.trainer.torch_backend import TorchBackend

    async def run() -> dict:
        uncached = HfEngine(model_dir, args.model, device="cpu", max_batch=GROUPS * GROUP_SIZE, prefix_cache_entries=0)
        await uncached.start()
        try:
            without = [(await generate_step(uncached, r))[0] for r in range(args.repeats + 1)][1:]
        finally:
            await uncached.close()
        engine = HfEngine(model_dir, args.model, device="cpu", max_batch=GROUPS * GROUP_SIZE)
        await engine.start()
        try:
            generation, batches = [], []
            for r in range(args.repeats + 1):
                seconds, results = await generate_step(engine, r)
                batches.append(batch_of(results, r))
                if r:
                    generation.append(seconds)
                print(f"generation {r}: {seconds:.1f}s (without the prefix cache {without[r - 1] if r else 0:.1f}s)", flush=True)
            figures: dict = {"prompt_tokens": [len(g.trajectories[0].transitions[0].prompt_token_ids) for g in batches[0].groups],
                             "generation_s": statistics.median(generation),
                             "generation_without_prefix_cache_s": statistics.median(without)}
            version = 1
            with tempfile.TemporaryDirectory() as tmp:
                for name in configs:
                    lora, shared, overlapped = name.startswith("lora"), "shared" in name, name.endswith("overlapped")
                    backend = TorchBackend(model_dir, device="cpu", lr=LR, lora_rank=16 if lora else None, loss=LossConfig(),
                                           temperature=TEMPERATURE, micro_batch=MICRO_BATCH, shared_prefix=shared)
                    store = CheckpointStore(Path(tmp) / name.replace(" ", "-").replace(",", ""), keep=2)
                    updates, saves, reloads, walls, generations = [], [], [], [], []
                    for r, batch in enumerate(batches):
                        seqs = collate(batch, backend.pad_id)
                        t0 = time.perf_counter()
                        if overlapped:
                            # The update and the next step's generation at once; the update's own time is its thread's.
                            async def timed_update():
                                t = time.perf_counter()
                                await asyncio.to_thread(backend.update, seqs)
                                return time.perf_counter() - t

                            update_s, (gen_s, _) = await asyncio.gather(timed_update(), generate_step(engine, 1000 + r))
                        else:
                            backend.update(seqs)
                            update_s = time.perf_counter() - t0
                            # The next step's rollouts after it, on the same (old) weights as the overlapped run's.
                            gen_s, _ = await generate_step(engine, 1000 + r)
                        busy_s = time.perf_counter() - t0
                        t0 = time.perf_counter()
                        fmt: list[str] = []
                        version += 1
                        uri = store.write(version, lambda d: fmt.append(backend.save(d)))
                        save_s = time.perf_counter() - t0
                        reload_s = await engine.load_weights(version, uri, fmt[0])
                        print(f"{name} {r}: update {update_s:.1f}s{' beside' if overlapped else ', then'} the next generation {gen_s:.1f}s: {busy_s:.1f}s, "
                              f"checkpoint {save_s:.2f}s, reload {reload_s:.2f}s", flush=True)
                        if r:
                            updates.append(update_s)
                            saves.append(save_s)
                            reloads.append(reload_s)
                            walls.append(busy_s)
                            generations.append(gen_s)
                    prefix = common_prefix_length(seqs.input_ids, seqs.attention_mask, seqs.first_response_position())
                    figures[name] = {"update_s": statistics.median(updates), "checkpoint_s": statistics.median(saves),
                                     "reload_s": statistics.median(reloads), "rows": len(seqs), "shared_tokens_last_batch": prefix}
                    figures[name]["next_generation_s"] = statistics.median(generations)
                    figures[name]["update_and_generation_s"] = statistics.median(walls)
            return figures
        finally:
            await engine.close()

    figures = asyncio.run(run())
    baseline = figures[configs[0]]
    rows = [("prompt tokens (per problem)", ", ".join(map(str, figures["prompt_tokens"]))),
            ("generation of the step's 16 rollouts (first calls)",
             f"{figures['generation_s']:.1f} s; without the prefix cache {figures['generation_without_prefix_cache_s']:.1f} s "
             f"({figures['generation_without_prefix_cache_s'] / figures['generation_s']:.2f}x)")]
    for name in configs:
        f = figures[name]
        f["step_s"] = f["update_and_generation_s"] + f["checkpoint_s"] + f["reload_s"]
        f["step_vs_baseline"] = baseline["step_s"] / f["step_s"] if "step_s" in baseline else 1.0
        f["update_vs_baseline"] = baseline["update_s"] / f["update_s"]
        rows.append((name, f"update {f['update_s']:.1f} s ({f['update_vs_baseline']:.2f}x {configs[0]}), next generation "
                           f"{f['next_generation_s']:.1f} s, together {f['update_and_generation_s']:.1f} s, checkpoint "
                           f"{f['checkpoint_s']:.2f} s, reload {f['reload_s']:.2f} s; step {f['step_s']:.1f} s "
                           f"({f['step_vs_baseline']:.2f}x)"))
    show(f"one demo step on {args.model}, {args.threads} threads, medians of {args.repeats}", rows)
    print(write_results(args.results, {"model": args.model, "repeats": args.repeats, "threads": args.threads, **figures}))


if __name__ == "__main__":
    main()

"""TRL's GRPOTrainer update on a given batch, timed; runs in TRL's own venv (bench/trainer.py starts it).

What is timed, per repeat: `GRPOTrainer.compute_loss` on the prepared inputs (TRL's own forward, per-token logps,
clipped GRPO loss with loss_type "grpo", i.e. per-sequence means then the batch mean, beta 0: no reference model),
the backward, gradient clipping at the same norm, and the AdamW step that the trainer created. No generation and
no reward scoring: the inputs dict is what `_generate_and_score_completions` would have handed `compute_loss`,
built from exactly the token ids, masks, behaviour logprobs and advantages that Lightwire's update trains on.

    <trl venv>/bin/python bench/trainer_trl.py --model-dir DIR --batch batch.json --repeats 3 --threads 2
prints one JSON object: {"step_s": [...], "trl_version": ...}
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--batch", required=True, help="JSON: prompt_ids, completion_ids, old_logps, advantages, lr, max_grad_norm")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import trl
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import GRPOConfig, GRPOTrainer

    batch = json.loads(open(args.batch).read())
    prompt_ids = torch.tensor(batch["prompt_ids"])  # [B, P]: every prompt the same length, so no padding either side
    completion_ids = torch.tensor(batch["completion_ids"])  # [B, C]
    n = prompt_ids.shape[0]
    inputs = {
        "prompt_ids": prompt_ids, "prompt_mask": torch.ones_like(prompt_ids),
        "completion_ids": completion_ids, "completion_mask": torch.ones_like(completion_ids),
        "advantages": torch.tensor(batch["advantages"], dtype=torch.float32),
        "old_per_token_logps": torch.tensor(batch["old_logps"], dtype=torch.float32),
        "num_items_in_batch": torch.tensor(float(completion_ids.numel())),
    }
    model = AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=torch.float32)
    with tempfile.TemporaryDirectory() as out:
        config = GRPOConfig(
            output_dir=out, per_device_train_batch_size=n, num_generations=n, max_completion_length=completion_ids.shape[1],
            learning_rate=batch["lr"], max_grad_norm=batch["max_grad_norm"], beta=0.0, loss_type="grpo", epsilon=0.2,
            epsilon_high=0.28, use_cpu=True, bf16=False, report_to="none", logging_steps=1_000_000, temperature=1.0,
        )
        trainer = GRPOTrainer(model=model, reward_funcs=lambda completions, **kw: [0.0] * len(completions), args=config,
                              train_dataset=Dataset.from_list([{"prompt": "x"}] * n))
        trainer.create_optimizer()
        trainer.current_gradient_accumulation_steps = 1  # set by Trainer's own loop, which is not run here
        model = trainer.model
        model.train()

        def step() -> float:
            t0 = time.perf_counter()
            trainer.optimizer.zero_grad(set_to_none=True)
            loss = trainer.compute_loss(model, inputs)
            trainer.accelerator.backward(loss)
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            trainer.optimizer.step()
            return time.perf_counter() - t0

        step()  # warm-up, as on the Lightwire side
        times = [step() for _ in range(args.repeats)]
    json.dump({"step_s": times, "trl_version": trl.__version__, "threads": torch.get_num_threads()}, sys.stdout)


if __name__ == "__main__":
    main()

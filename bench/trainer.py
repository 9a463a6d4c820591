"""GRPO update throughput on SmolLM2-135M against a bare forward+backward+AdamW step on the same batch.

Both sides see the same 8 sequences (64 prompt + 64 response tokens each), the same optimizer and the same
device; tokens/s counts trained (response) tokens. Medians of --repeats interleaved runs after one warm-up each; figures go to
stdout and bench/results/trainer.json. TRL's GRPOTrainer is not measured here (see the issue notes).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from bench.common import show, write_results  # noqa: E402
from lightwire.settings import CommonSettings  # noqa: E402
from lightwire.v1 import events_pb2 as pb  # noqa: E402
from services.inference.model_store import ensure_model  # noqa: E402
from services.trainer.collate import collate  # noqa: E402
from services.trainer.policy import Policy  # noqa: E402


def make_batch(sequences: int, prompt: int, response: int) -> pb.TrainingBatch:
    g = torch.Generator().manual_seed(0)
    batch = pb.TrainingBatch(batch_id="bench")
    group = batch.groups.add(group_id="g")
    for i in range(sequences):
        t = group.trajectories.add(rollout_id=f"r{i}", reward=float(i % 2))
        t.transitions.add(prompt_token_ids=torch.randint(10, 40000, (prompt,), generator=g).tolist(),
                          response_token_ids=torch.randint(10, 40000, (response,), generator=g).tolist(),
                          response_mask=[1] * response, response_logprobs=[-5.0] * response, reward=float(i % 2))
    return batch


def bare_step(policy: Policy, seqs) -> float:
    """Forward, cross-entropy on the response tokens, backward, AdamW: the floor any RL update pays."""
    t0 = time.perf_counter()
    policy.optimizer.zero_grad(set_to_none=True)
    ids = seqs.input_ids.to(policy.device)
    logits = policy.model(input_ids=ids, attention_mask=seqs.attention_mask.to(policy.device)).logits[:, :-1]
    mask = seqs.response_mask.to(policy.device)
    nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="none")
    loss = (nll * mask.reshape(-1)).sum() / mask.sum()
    loss.backward()
    policy.optimizer.step()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--sequences", type=int, default=8)
    parser.add_argument("--prompt", type=int, default=64)
    parser.add_argument("--response", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    policy = Policy(ensure_model(args.model, CommonSettings().cache_dir), device="cpu", lr=1e-6, micro_batch=args.sequences)
    seqs = collate(make_batch(args.sequences, args.prompt, args.response), policy.pad_id)
    tokens = seqs.model_tokens
    bare_step(policy, seqs)
    policy.update(seqs)
    bare, grpo = [], []
    for _ in range(args.repeats):  # interleaved, so a busy moment of the machine hits both sides alike
        bare.append(bare_step(policy, seqs))
        grpo.append(policy.update(seqs).seconds)
    bare_tps, grpo_tps = tokens / statistics.median(bare), tokens / statistics.median(grpo)
    figures = {
        "model": args.model, "sequences": args.sequences, "prompt_tokens": args.prompt, "response_tokens": args.response,
        "threads": torch.get_num_threads(), "bare_step_s": [round(x, 3) for x in bare], "grpo_step_s": [round(x, 3) for x in grpo],
        "bare_tokens_per_s": round(bare_tps, 1), "grpo_tokens_per_s": round(grpo_tps, 1), "grpo_over_bare": round(grpo_tps / bare_tps, 3),
        "target_grpo_over_bare": 0.9,
    }
    path = write_results("trainer", figures)
    show("GRPO update vs bare forward+backward", [
        ("bare fwd+bwd+AdamW, median s", f"{statistics.median(bare):.2f}"),
        ("GRPO update, median s", f"{statistics.median(grpo):.2f}"),
        ("trained tokens/s bare / GRPO", f"{bare_tps:.0f} / {grpo_tps:.0f}"),
        ("GRPO / bare", f"{grpo_tps / bare_tps:.2f}"),
        ("results", str(path)),
    ])


if __name__ == "__main__":
    main()

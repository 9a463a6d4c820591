"""GRPO update throughput on SmolLM2-135M against a bare forward+backward+AdamW step and TRL's GRPOTrainer update,
all on the same batch.

Every side sees the same 8 sequences (64 prompt + 64 response tokens each, the same token ids), the same learning
rate, clipping and device; tokens/s counts trained (response) tokens. Lightwire and the bare step run interleaved in
this process; TRL runs in its own venv (`$LW_CACHE_DIR/venv-trl`, built once: TRL stays out of the project's
dependencies) as a subprocess, between two halves of the interleaved runs, so a busy spell of the machine is less
likely to land on one side only. Medians of --repeats runs after one warm-up each; figures go to stdout and
bench/results/trainer.json. `--no-trl` skips TRL.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from bench.common import bench_venv, show, write_results  # noqa: E402
from lightwire.settings import CommonSettings  # noqa: E402
from lightwire.v1 import events_pb2 as pb  # noqa: E402
from lightwire.model_cache import ensure_model  # noqa: E402
from lightwire.services.trainer.collate import collate  # noqa: E402
from lightwire.services.trainer.torch_backend import TorchBackend  # noqa: E402


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


def bare_step(policy: TorchBackend, seqs) -> float:
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


TRL_PACKAGES = ["trl==1.16.0", f"torch=={torch.__version__.split('+')[0]}", f"transformers=={__import__('transformers').__version__}"]


def trl_step_seconds(model_dir: Path, batch: pb.TrainingBatch, seqs, lr: float, max_grad_norm: float, repeats: int) -> dict:
    """TRL's update (bench/trainer_trl.py) on exactly these token ids, behaviour logprobs and advantages."""
    rows = [g.trajectories[i].transitions[0] for g in batch.groups for i in range(len(g.trajectories))]
    doc = {"prompt_ids": [list(t.prompt_token_ids) for t in rows], "completion_ids": [list(t.response_token_ids) for t in rows],
           "old_logps": [list(t.response_logprobs) for t in rows], "advantages": seqs.advantages.tolist(), "lr": lr,
           "max_grad_norm": max_grad_norm}
    python = bench_venv("trl", TRL_PACKAGES)
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(doc, f)
        f.flush()
        done = subprocess.run([str(python), str(ROOT / "bench" / "trainer_trl.py"), "--model-dir", str(model_dir), "--batch", f.name,
                               "--repeats", str(repeats), "--threads", str(torch.get_num_threads())],
                              capture_output=True, text=True, env={**os.environ, "TRANSFORMERS_VERBOSITY": "error"})
    if done.returncode != 0:
        raise RuntimeError(f"TRL side failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--sequences", type=int, default=8)
    parser.add_argument("--prompt", type=int, default=64)
    parser.add_argument("--response", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-trl", action="store_true", help="skip TRL's GRPOTrainer")
    args = parser.parse_args()
    model_dir = ensure_model(args.model, CommonSettings().cache_dir)
    lr = 1e-6
    policy = TorchBackend(model_dir, device="cpu", lr=lr, micro_batch=args.sequences)
    batch = make_batch(args.sequences, args.prompt, args.response)
    seqs = collate(batch, policy.pad_id)
    tokens = seqs.model_tokens
    bare_step(policy, seqs)
    policy.update(seqs)
    bare, grpo = [], []
    trl: dict | None = None

    def interleaved(n: int) -> None:  # so a busy moment of the machine hits both sides alike
        for _ in range(n):
            bare.append(bare_step(policy, seqs))
            grpo.append(policy.update(seqs).seconds)

    interleaved((args.repeats + 1) // 2)
    if not args.no_trl:
        trl = trl_step_seconds(model_dir, batch, seqs, lr, policy.max_grad_norm, args.repeats)
    interleaved(args.repeats // 2)
    bare_tps, grpo_tps = tokens / statistics.median(bare), tokens / statistics.median(grpo)
    figures = {
        "model": args.model, "sequences": args.sequences, "prompt_tokens": args.prompt, "response_tokens": args.response,
        "threads": torch.get_num_threads(), "load_average": os.getloadavg(), "bare_step_s": [round(x, 3) for x in bare],
        "grpo_step_s": [round(x, 3) for x in grpo], "bare_tokens_per_s": round(bare_tps, 1), "grpo_tokens_per_s": round(grpo_tps, 1),
        "grpo_over_bare": round(grpo_tps / bare_tps, 3), "target_grpo_over_bare": 0.9,
    }
    rows = [
        ("bare fwd+bwd+AdamW, median s", f"{statistics.median(bare):.2f}"),
        ("Lightwire GRPO update, median s", f"{statistics.median(grpo):.2f}"),
        ("trained tokens/s bare / GRPO", f"{bare_tps:.0f} / {grpo_tps:.0f}"),
        ("GRPO / bare", f"{grpo_tps / bare_tps:.2f}"),
    ]
    if trl is not None:
        trl_tps = tokens / statistics.median(trl["step_s"])
        figures.update({"trl_version": trl["trl_version"], "trl_step_s": [round(x, 3) for x in trl["step_s"]],
                        "trl_tokens_per_s": round(trl_tps, 1), "grpo_over_trl": round(grpo_tps / trl_tps, 3),
                        "trl_over_bare": round(trl_tps / bare_tps, 3)})
        rows += [(f"TRL {trl['trl_version']} GRPOTrainer update, median s", f"{statistics.median(trl['step_s']):.2f}"),
                 ("trained tokens/s TRL", f"{trl_tps:.0f}"), ("Lightwire GRPO / TRL", f"{grpo_tps / trl_tps:.2f}")]
    path = write_results("trainer", figures)
    show("GRPO update vs bare forward+backward and TRL", rows + [("results", str(path))])


if __name__ == "__main__":
    main()

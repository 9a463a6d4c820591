"""Run in the verl side venv (requirements/verl.lock) by test_trainer_verl.py; prints one JSON line.

One batch of tiny-llama sequences (prompts and responses of different lengths, masked observation tokens, unequal
per-rollout weights, behaviour logprobs off the current policy so both clip bounds bind) goes through two losses:
ours (services/trainer/grpo.py, as TorchBackend.update computes it) and verl's (our batch layout -> DataProto ->
left_right_2_no_padding -> verl's ppo_loss with the backend's ActorConfig), the latter fed the model's log-probs
in the no-padding layout verl's FSDP engine hands it. Both losses and both gradients come back for comparison.
verl's engine itself needs CUDA (see services/trainer/verl_backend.py), so the forward pass here is the model's.
"""

from __future__ import annotations

import json
import sys

import torch
from transformers import AutoModelForCausalLM
from verl import DataProto
from verl.utils import tensordict_utils as tu
from verl.workers.utils.losses import ppo_loss
from verl.workers.utils.padding import left_right_2_no_padding

from lightwire.services.trainer.collate import Sequences
from lightwire.services.trainer.grpo import LossConfig, policy_loss, token_logprobs
from lightwire.services.trainer.verl_backend import actor_config
from lightwire.services.trainer.verl_batch import metrics_from_verl, pad_rows, to_verl_tensors

TEMPERATURE = 0.9


def make_batch(model, pad_id: int) -> Sequences:
    g = torch.Generator().manual_seed(7)
    shapes = [(3, 5), (7, 2), (4, 6), (5, 4), (2, 3), (6, 5)]  # (prompt, response) lengths
    length = max(p + r for p, r in shapes)
    n = len(shapes)
    ids = torch.full((n, length), pad_id, dtype=torch.long)
    attention = torch.zeros((n, length), dtype=torch.long)
    mask = torch.zeros((n, length - 1))
    for i, (p, r) in enumerate(shapes):
        ids[i, : p + r] = torch.randint(3, model.config.vocab_size, (p + r,), generator=g)
        attention[i, : p + r] = 1
        mask[i, p - 1 : p - 1 + r] = 1
    mask[2, 5] = 0  # an observation token inside a response
    with torch.no_grad():
        current = token_logprobs(model(input_ids=ids, attention_mask=attention).logits[:, :-1], ids[:, 1:], TEMPERATURE)
    behaviour = (current + (torch.rand(current.shape, generator=g) - 0.5) * 0.8) * mask
    advantages = torch.tensor([1.2, -0.7, 0.4, -1.1, 0.9, -0.3])
    weights = torch.tensor([1.0, 0.5, 0.5, 1.0, 1 / 3, 1.0])
    return Sequences(ids, attention, mask, behaviour, advantages, weights)


def grads(model) -> list[torch.Tensor]:
    out = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    return out


def step(model_dir: str, gradients: list[torch.Tensor]) -> torch.Tensor:
    """The weights after one AdamW step with these gradients, clipped as both backends clip (norm 1.0)."""
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    params = list(model.parameters())
    for p, g in zip(params, gradients, strict=True):
        p.grad = g.clone()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    torch.optim.AdamW(params, lr=1e-3, weight_decay=0.0).step()
    return torch.cat([p.detach().flatten() for p in params])


def main(model_dir: str) -> None:
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.train()
    pad_id = 0
    seqs = make_batch(model, pad_id)
    loss = LossConfig(clip_low=0.2, clip_high=0.28)

    logprobs = token_logprobs(model(input_ids=seqs.input_ids, attention_mask=seqs.attention_mask).logits[:, :-1],
                              seqs.input_ids[:, 1:], TEMPERATURE)
    ours = policy_loss(logprobs, seqs.behaviour_logprobs, seqs.advantages, seqs.response_mask, loss,
                       sequence_weights=seqs.weights)
    ours.loss.backward()
    ours_grad = grads(model)

    # Padded as the backend pads for 2 ranks x 4 sequences per micro-batch: 6 rows become 8, two of which train nothing.
    tensors = to_verl_tensors(pad_rows(seqs, 8), pad_id)
    rows = tensors["input_ids"].shape[0]
    data = left_right_2_no_padding(DataProto.from_dict(tensors=tensors, meta_info={"temperature": TEMPERATURE}).to_tensordict())
    # The FSDP engine's micro-batch inputs (forward_backward_batch): global token count and data-parallel size.
    tu.assign_non_tensor(data, global_batch_size=rows, dp_size=1, batch_num_tokens=int(tensors["response_mask"].sum()))
    # The engine's output layout: per sequence, at each of its tokens, the log-prob of the token after it.
    out = model(input_ids=tensors["input_ids"], attention_mask=tensors["attention_mask"], position_ids=tensors["position_ids"])
    next_logprobs = token_logprobs(out.logits[:, :-1], tensors["input_ids"][:, 1:], TEMPERATURE)
    next_logprobs = torch.cat([next_logprobs, torch.zeros_like(next_logprobs[:, :1])], dim=-1)
    valid = tensors["attention_mask"].bool()
    nested = torch.nested.as_nested_tensor([next_logprobs[i][valid[i]] for i in range(rows)], layout=torch.jagged)
    config = actor_config(loss, micro_batch=4)
    verl_loss, verl_metrics = ppo_loss(config, {"log_probs": nested}, data)
    verl_loss.backward()
    verl_grad = grads(model)

    mapped = metrics_from_verl({"loss": [verl_loss.item()], **{k: v for k, v in verl_metrics.items() if k != "actor/pg_loss"}},
                               tokens=seqs.model_tokens, seconds=1.0)
    ours_weights, verl_weights = step(model_dir, ours_grad), step(model_dir, verl_grad)
    flat_ours, flat_verl = torch.cat([g.flatten() for g in ours_grad]), torch.cat([g.flatten() for g in verl_grad])
    print(json.dumps({
        "ours_loss": ours.loss.item(), "verl_loss": verl_loss.item(),
        "grad_max_abs": float(flat_ours.abs().max()), "grad_max_diff": float((flat_ours - flat_verl).abs().max()),
        "weights_moved": float((ours_weights - torch.cat([p.detach().flatten() for p in model.parameters()])).abs().max()),
        "weights_max_diff": float((ours_weights - verl_weights).abs().max()),
        "ours_clip_fraction": ours.clip_fraction, "verl_clip_fraction": mapped.clip_fraction,
        "mapped_loss": mapped.loss, "verl_rows": rows,
    }))


if __name__ == "__main__":
    main(sys.argv[1])

"""The torch trainer backend (LW_TRAINER_BACKEND=torch): the policy being trained as a transformers causal LM
(optionally a peft LoRA on it), its AdamW optimizer, one update (GRPO, or the algorithm LW_TRAINER_ALGORITHM names:
services/trainer/algorithms.py); CPU or GPU, data parallel under torchrun."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from lightwire.services.trainer.algorithms import Grpo, Objective, Plan, Rollouts
from lightwire.services.trainer.backend import UpdateMetrics
from lightwire.services.trainer.collate import Sequences
from lightwire.services.trainer.grpo import LossConfig, policy_loss, token_logprobs
from lightwire.services.trainer.host_memory import release_free_memory
from lightwire.services.trainer.kto import reference_point
from lightwire.services.trainer.shared_prefix import MIN_SHARED_TOKENS, common_prefix_length, logits_over_shared_prefix


def _rank_and_world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _sum_across_ranks(trainable: list[torch.nn.Parameter], sums: list[float]) -> list[float]:
    """Gradients and metric sums added over all ranks; a parameter no local sequence reached still joins with zeros."""
    import torch.distributed as dist

    for p in trainable:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
    totals = torch.tensor(sums)
    dist.all_reduce(totals, op=dist.ReduceOp.SUM)
    return totals.tolist()


class TorchBackend:
    def __init__(self, model_dir: Path, *, device: str = "auto", lr: float = 1e-5, weight_decay: float = 0.0,
                 lora_rank: int | None = None, loss: LossConfig = LossConfig(), temperature: float = 1.0,
                 max_grad_norm: float = 1.0, micro_batch: int = 8, gradient_checkpointing: bool = False,
                 objective: Objective | None = None, shared_prefix: bool = True):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.device = pick_device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
        self.lora = lora_rank is not None
        if self.lora:
            from peft import LoraConfig, get_peft_model

            model = get_peft_model(model, LoraConfig(r=lora_rank, lora_alpha=2 * lora_rank, target_modules="all-linear", lora_dropout=0.0))
        if gradient_checkpointing:
            # Keeps each layer's input instead of all its activations and recomputes the rest in the backward pass.
            # Non-reentrant: it needs no input that requires grad, which a LoRA model's embeddings do not have.
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self.model = model.to(self.device)
        self.model.train()
        # grpo unless told otherwise; its KL weight is the loss config's.
        self.objective = objective or Grpo(loss.kl_coef)
        # A frozen copy for the KL penalty (or a dpo/kto reference); with LoRA the base model (adapter off) plays that
        # part for free.
        self.reference = None
        if (loss.kl_coef > 0 or self.objective.reference == "base") and not self.lora:
            self.reference = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32).to(self.device).eval()
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
        self.loss_config = loss
        self.temperature = temperature
        self.max_grad_norm = max_grad_norm
        self.micro_batch = micro_batch
        # A checkpointed model keeps no key/value cache to share.
        self.shared_prefix = shared_prefix and not gradient_checkpointing

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id

    def sequence_logprobs(self, seqs: Sequences, model=None) -> torch.Tensor:
        """Log-probability of the next token under the model ([N, T-1]), at the sampling temperature, from the first
        response position on; earlier (prompt-only) positions read 0.

        Agent prompts are long and replies short, so the vocabulary projection and log-softmax run only over the
        positions that can hold model tokens: with a 400-token prompt and a 32-token reply that is a tenth of them.
        The prompt tokens every row shares go through the model once (shared_prefix.py).
        """
        model = model or self.model
        ids, attention = seqs.input_ids.to(self.device), seqs.attention_mask.to(self.device)
        start = seqs.first_response_position()
        keep = ids.shape[1] - start
        prefix = common_prefix_length(ids, attention, limit=start) if self.shared_prefix else 0
        if prefix >= MIN_SHARED_TOKENS:
            logits = logits_over_shared_prefix(model, ids, attention, prefix, keep)
        else:
            logits = model(input_ids=ids, attention_mask=attention, logits_to_keep=keep).logits
        tail = token_logprobs(logits[:, :-1], ids[:, start + 1 :], self.temperature)
        return torch.nn.functional.pad(tail, (start, 0))

    def update(self, seqs: Sequences) -> UpdateMetrics:
        """One optimizer step over all sequences, in micro-batches with gradients accumulated.

        Under torch.distributed (torchrun; gloo on the CPU) every rank takes every world-th sequence, scales its
        loss by its share of the whole batch's weight, and gradients are summed across ranks before the step: the
        update equals the single-process one, and every rank's weights stay identical.
        """
        if self.objective.name != "grpo":
            return self._update_objective(seqs)
        t0 = time.perf_counter()
        rank, world = _rank_and_world()
        self.optimizer.zero_grad(set_to_none=True)
        total_weight = float(seqs.weights.sum()) or 1.0
        mine = seqs.take(list(range(rank, len(seqs), world))) if world > 1 else seqs
        sums = self._accumulate(mine, total_weight)
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        if world > 1:
            sums = _sum_across_ranks(trainable, sums)
        torch.nn.utils.clip_grad_norm_(trainable, self.max_grad_norm)
        self.optimizer.step()
        return UpdateMetrics(*sums, seqs.model_tokens, time.perf_counter() - t0)

    def _accumulate(self, mine: Sequences, total_weight: float) -> list[float]:
        """Backward passes over this rank's sequences; returns its weighted (loss, kl, clip fraction, ratio mean)."""
        sums = [0.0, 0.0, 0.0, 0.0]
        # Micro-batches of similar lengths, each cut to its own longest row: padding is computed for nothing.
        mine = mine.sorted_by_length()
        for start in range(0, len(mine), self.micro_batch):
            part = mine.slice(start, start + self.micro_batch).trimmed()
            logprobs = self.sequence_logprobs(part)
            ref = self._reference_logprobs(part)
            out = policy_loss(
                logprobs, part.behaviour_logprobs.to(self.device), part.advantages.to(self.device), part.response_mask.to(self.device),
                self.loss_config, ref_logprobs=ref, sequence_weights=part.weights.to(self.device),
            )
            share = float(part.weights.sum()) / total_weight
            (out.loss * share).backward()
            for i, value in enumerate((float(out.loss.detach()), out.kl, out.clip_fraction, out.ratio_mean)):
                sums[i] += value * share
            del logprobs, ref, out
            if self.device.type == "cpu":
                release_free_memory()
        return sums

    def _reference_logprobs(self, part: Sequences) -> torch.Tensor | None:
        if self.loss_config.kl_coef <= 0:
            return None
        return self._base_logprobs(part)

    def _base_logprobs(self, part: Sequences) -> torch.Tensor:
        with torch.no_grad():
            if self.lora:
                with self.model.disable_adapter():
                    return self.sequence_logprobs(part)
            return self.sequence_logprobs(part, self.reference)

    def _update_objective(self, seqs: Sequences) -> UpdateMetrics:
        """One optimizer step of rft, dpo or kto: the objective's plan says which rows train, in units (a row, a
        DPO pair, a KTO rollout) that go into micro-batches whole; a unit's share of the update is its weight over
        all units'. Under torch.distributed every rank takes every world-th unit, as GRPO's path takes rows."""
        t0 = time.perf_counter()
        rank, world = _rank_and_world()
        self.optimizer.zero_grad(set_to_none=True)
        plan = self.objective.plan(seqs)
        total_weight = sum(plan.unit_weights) or 1.0
        mine = list(range(rank, len(plan.units), world))
        parts = self._pack(plan, mine)
        z0 = self._reference_point(plan, parts, world) if self.objective.wants_reference_point else None
        sums = [0.0, 0.0, 0.0, 0.0]
        for rows, weight in parts:
            part = plan.seqs.take(rows).trimmed()
            logprobs = self.sequence_logprobs(part)
            ref = self._objective_reference(part)
            out = self.objective.loss(part, logprobs, ref, z0)
            share = weight / total_weight
            (out.loss * share).backward()
            for i, value in enumerate((float(out.loss.detach()), out.kl, out.clip_fraction, out.ratio_mean)):
                sums[i] += value * share
            del logprobs, ref, out
            if self.device.type == "cpu":
                release_free_memory()
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        if world > 1:
            sums = _sum_across_ranks(trainable, sums)
        torch.nn.utils.clip_grad_norm_(trainable, self.max_grad_norm)
        self.optimizer.step()
        return UpdateMetrics(*sums, plan.model_tokens, time.perf_counter() - t0)

    def _pack(self, plan: Plan, units: list[int]) -> list[tuple[list[int], float]]:
        """The units, shortest first, packed whole into micro-batches of about micro_batch rows (a unit longer than
        that is one micro-batch): (rows, summed unit weight) each."""
        lengths = plan.seqs.lengths()
        units = sorted(units, key=lambda u: int(lengths[plan.units[u]].max()))
        parts: list[tuple[list[int], float]] = []
        rows: list[int] = []
        weight = 0.0
        for u in units:
            if rows and len(rows) + len(plan.units[u]) > self.micro_batch:
                parts.append((rows, weight))
                rows, weight = [], 0.0
            rows = rows + plan.units[u]
            weight += plan.unit_weights[u]
        if rows:
            parts.append((rows, weight))
        return parts

    def _objective_reference(self, part: Sequences) -> torch.Tensor | None:
        if self.objective.reference == "base":
            return self._base_logprobs(part)
        if self.objective.reference == "behaviour":
            return part.behaviour_logprobs.to(self.device)
        return None

    def _reference_point(self, plan: Plan, parts: list[tuple[list[int], float]], world: int) -> torch.Tensor:
        """KTO's z0 over the whole batch (every rank's units): the mean over rollouts of their summed logprob ratio
        to the reference, clamped at 0, from a forward pass without gradient before the update."""
        totals = torch.zeros(2, dtype=torch.float64)  # sum of the rollouts' log-ratios, number of rollouts
        with torch.no_grad():
            for rows, _ in parts:
                part = plan.seqs.take(rows).trimmed()
                keep = part.response_mask.to(self.device) > 0
                diff = torch.where(keep, self.sequence_logprobs(part) - self._objective_reference(part), torch.zeros((), device=self.device))
                rollouts = Rollouts.of(part)
                totals[0] += float(diff.sum())
                totals[1] += len(rollouts.rewards)
        if world > 1:
            import torch.distributed as dist

            dist.all_reduce(totals, op=dist.ReduceOp.SUM)
        mean = totals[0] / totals[1].clamp(min=1)
        return reference_point(mean.reshape(1).float().to(self.device))

    def save(self, directory: Path) -> str:
        """Full weights as a transformers directory, or the LoRA adapter; returns the WeightVersion format."""
        self.model.save_pretrained(directory, safe_serialization=True)
        if not self.lora:
            self.tokenizer.save_pretrained(directory)
        return "lora" if self.lora else "full"

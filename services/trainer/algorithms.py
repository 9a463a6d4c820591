"""The trainer's algorithms behind one interface, chosen by LW_TRAINER_ALGORITHM: `grpo` (grpo.py, the default),
`rft` (rft.py), `dpo` (dpo.py) or `kto` (kto.py). All train on the same collated batch (collate.py).

An Objective says whether a batch carries a signal (main.py skips it otherwise), and, for every algorithm but grpo,
which rows train (`plan`) and their loss on a micro-batch (`loss`). GRPO's own update path in the torch backend is
unchanged: its loss is per row, so any split of the rows into micro-batches gives the same update. The sequence-level
losses are not: a DPO pair, or a KTO rollout of several transitions, must be in one backward pass, so a plan hands
the backend units (a pair's rows, a rollout's rows) that it packs into micro-batches whole.

References (`dpo`, `kto`): `behaviour` takes the logprobs the inference engine captured for the sampled tokens, so
the loss measures the policy against the one that sampled the batch (online DPO/KTO; no second model, no extra
forward pass; the margin starts at 0 on a fresh batch). The capture is exact on the CPU engine and on vLLM within its
numerics (bf16 there: a little noise in the margin). `base` takes a frozen copy of the base model (with LoRA, the
base with the adapter off), as offline DPO/KTO do: it keeps the policy near its start, at one more forward pass per
micro-batch and, without LoRA, a second copy of the weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch

from lightwire.services.trainer.collate import Sequences, carries_no_signal
from lightwire.services.trainer.dpo import DpoConfig, dpo_loss, dpo_pairs
from lightwire.services.trainer.grpo import LossOutput
from lightwire.services.trainer.kto import KtoConfig, kto_desirable, kto_loss
from lightwire.services.trainer.rft import RftConfig, rft_keep, rft_loss

if TYPE_CHECKING:
    from lightwire.services.trainer.settings import TrainerSettings

Algorithm = Literal["grpo", "rft", "dpo", "kto"]
Reference = Literal["behaviour", "base"]


@dataclass
class Plan:
    """What a batch trains under one algorithm: units of rows of `seqs` that share a backward pass, and their weights
    (a unit's share of the update is its weight over the sum of all units')."""

    seqs: Sequences
    units: list[list[int]]
    unit_weights: list[float]

    @property
    def model_tokens(self) -> int:
        rows = [i for unit in self.units for i in unit]
        return int(self.seqs.response_mask[rows].sum()) if rows else 0


@dataclass
class Rollouts:
    """The rollouts behind a set of rows: each row's rollout (0..R-1) and one reward, group and weight per rollout."""

    of_row: torch.Tensor  # [N]
    rewards: torch.Tensor  # [R]
    groups: torch.Tensor  # [R]
    weights: torch.Tensor  # [R] sum of the rollout's row weights

    @classmethod
    def of(cls, seqs: Sequences) -> "Rollouts":
        if seqs.rollout_index is None or seqs.rollout_rewards is None or seqs.group_index is None:
            raise ValueError("this algorithm needs each row's rollout, reward and group (collate sets them)")
        ids, of_row = torch.unique(seqs.rollout_index, return_inverse=True)
        first = torch.zeros(len(ids), dtype=torch.long).scatter_reduce(0, of_row, torch.arange(len(seqs)), "amin", include_self=False)
        weights = torch.zeros(len(ids), dtype=seqs.weights.dtype).index_add(0, of_row, seqs.weights)
        return cls(of_row, seqs.rollout_rewards[first], seqs.group_index[first], weights)

    def rows(self, rollout: int) -> list[int]:
        return (self.of_row == rollout).nonzero().squeeze(-1).tolist()


class Objective:
    name: Algorithm
    # Where the reference logprobs come from: none needed, the behaviour logprobs, or the frozen base model.
    reference: Reference | None = None
    # Whether the loss takes the whole batch's mean sequence log-ratio to the reference (KTO's z0).
    wants_reference_point = False

    def carries_signal(self, seqs: Sequences) -> bool:
        plan = self.plan(seqs)
        return bool(plan.units)

    def plan(self, seqs: Sequences) -> Plan:
        raise NotImplementedError

    def loss(self, part: Sequences, logprobs: torch.Tensor, ref_logprobs: torch.Tensor | None,
             z0: torch.Tensor | None = None) -> LossOutput:
        raise NotImplementedError


@dataclass
class Grpo(Objective):
    """The default: the torch backend keeps its own GRPO path (grpo.policy_loss over rows); only the skip is here."""

    kl_coef: float = 0.0
    name: Algorithm = "grpo"

    def carries_signal(self, seqs: Sequences) -> bool:
        return not carries_no_signal(seqs, self.kl_coef)


@dataclass
class Rft(Objective):
    config: RftConfig = RftConfig()
    name: Algorithm = "rft"

    def plan(self, seqs: Sequences) -> Plan:
        rollouts = Rollouts.of(seqs)
        kept = rft_keep(rollouts.rewards, rollouts.groups, self.config)[rollouts.of_row]
        # Rows train independently (like GRPO's): one unit each, in order of length so micro-batches pad little.
        order = torch.argsort(seqs.lengths(), stable=True).tolist()
        units = [[i] for i in order if kept[i]]
        return Plan(seqs, units, [float(seqs.weights[u[0]]) for u in units])

    def loss(self, part, logprobs, ref_logprobs, z0=None):
        device = logprobs.device
        return rft_loss(logprobs, part.response_mask.to(device), part.weights.to(device), part.behaviour_logprobs.to(device))


@dataclass
class Dpo(Objective):
    config: DpoConfig = DpoConfig()
    reference: Reference = "behaviour"
    name: Algorithm = "dpo"

    def plan(self, seqs: Sequences) -> Plan:
        rollouts = Rollouts.of(seqs)
        chosen, rejected = dpo_pairs(rollouts.rewards, rollouts.groups)
        units = [rollouts.rows(c) + rollouts.rows(r) for c, r in zip(chosen.tolist(), rejected.tolist())]
        weights = [float(rollouts.weights[c] + rollouts.weights[r]) / 2 for c, r in zip(chosen.tolist(), rejected.tolist())]
        return Plan(seqs, units, weights)

    def loss(self, part, logprobs, ref_logprobs, z0=None):
        # A part holds whole pairs, one per group, so pairing its rollouts again gives the plan's pairs.
        rollouts = Rollouts.of(part)
        chosen, rejected = dpo_pairs(rollouts.rewards, rollouts.groups)
        device = logprobs.device
        return dpo_loss(logprobs, ref_logprobs, part.response_mask.to(device), chosen, rejected, self.config,
                        sequence=rollouts.of_row.to(device), pair_weights=(rollouts.weights[chosen] + rollouts.weights[rejected]).to(device) / 2,
                        behaviour_logprobs=part.behaviour_logprobs.to(device))


@dataclass
class Kto(Objective):
    config: KtoConfig = KtoConfig()
    reference: Reference = "behaviour"
    name: Algorithm = "kto"
    wants_reference_point = True

    def plan(self, seqs: Sequences) -> Plan:
        rollouts = Rollouts.of(seqs)
        units = [rollouts.rows(r) for r in range(len(rollouts.rewards))]
        return Plan(seqs, units, rollouts.weights.tolist())

    def loss(self, part, logprobs, ref_logprobs, z0=None):
        rollouts = Rollouts.of(part)
        device = logprobs.device
        return kto_loss(logprobs, ref_logprobs, part.response_mask.to(device), kto_desirable(rollouts.rewards, self.config).to(device),
                        self.config, sequence=rollouts.of_row.to(device), sequence_weights=rollouts.weights.to(device), z0=z0,
                        behaviour_logprobs=part.behaviour_logprobs.to(device))


def build_objective(settings: TrainerSettings) -> Objective:
    """The algorithm LW_TRAINER_ALGORITHM names, with its settings; every config checks its values when built."""
    algorithm = settings.trainer_algorithm
    if algorithm == "rft":
        return Rft(RftConfig(settings.trainer_rft_mode, settings.trainer_rft_min_reward))
    if algorithm == "dpo":
        return Dpo(DpoConfig(settings.trainer_dpo_beta), settings.trainer_dpo_reference)
    if algorithm == "kto":
        return Kto(KtoConfig(settings.trainer_kto_beta, settings.trainer_kto_desirable_weight, settings.trainer_kto_undesirable_weight,
                             settings.trainer_kto_threshold), settings.trainer_kto_reference)
    return Grpo(settings.trainer_kl_coef)

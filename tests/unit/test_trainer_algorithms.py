"""The algorithms behind LW_TRAINER_ALGORITHM: what each trains on a collated batch, and one optimizer update of the
torch backend on the tiny model that moves the logprobs of the kept / preferred rollouts up."""

from __future__ import annotations

import math

import pytest
import torch

from lightwire.settings import CommonSettings
from lightwire.v1 import events_pb2 as pb
from lightwire.services.trainer.algorithms import Dpo, Grpo, Kto, Rft, Rollouts, build_objective
from lightwire.services.trainer.collate import collate
from lightwire.services.trainer.dpo import DpoConfig
from lightwire.services.trainer.kto import KtoConfig
from lightwire.services.trainer.rft import RftConfig
from lightwire.services.trainer.settings import TrainerSettings


def batch(rewards: list[list[float]], transitions: int = 1, seed: int = 0) -> pb.TrainingBatch:
    """Groups of rollouts with the given rewards, each of `transitions` transitions of random tokens."""
    g = torch.Generator().manual_seed(seed)
    out = pb.TrainingBatch(batch_id="b")
    for gi, group_rewards in enumerate(rewards):
        group = out.groups.add(group_id=f"g{gi}")
        for i, r in enumerate(group_rewards):
            t = group.trajectories.add(rollout_id=f"r{gi}{i}", reward=r)
            for k in range(transitions):
                prompt = torch.randint(5, 2000, (5 + i + k,), generator=g).tolist()
                response = torch.randint(5, 2000, (3 + gi + i,), generator=g).tolist()
                t.transitions.add(prompt_token_ids=prompt, response_token_ids=response, response_mask=[1] * len(response),
                                  response_logprobs=[-7.5] * len(response), reward=r)
    return out


def test_plans_select_keep_pair_and_weigh_whole_rollouts():
    seqs = collate(batch([[1.0, 0.0, 0.5], [0.2, 0.2]], transitions=2), pad_id=0)
    # rows: rollouts r00 r00 r01 r01 r02 r02 r10 r10 r11 r11, each transition half its rollout's weight
    assert seqs.rollout_index.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4] and seqs.group_index.tolist() == [0] * 6 + [1] * 4
    rollouts = Rollouts.of(seqs)
    assert rollouts.rewards.tolist() == pytest.approx([1.0, 0.0, 0.5, 0.2, 0.2]) and rollouts.weights.tolist() == [1.0] * 5

    rft = Rft(RftConfig("threshold", 0.5)).plan(seqs)
    assert sorted(i for u in rft.units for i in u) == [0, 1, 4, 5] and rft.unit_weights == [0.5] * 4
    best = Rft(RftConfig("best", -math.inf)).plan(seqs)
    assert sorted(i for u in best.units for i in u) == [0, 1, 6, 7]  # group 1 ties: its first rollout
    dpo = Dpo().plan(seqs)
    # group 0: r00 (1.0) over r01 (0.0), every row of both; group 1: a tie, no pair
    assert dpo.units == [[0, 1, 2, 3]] and dpo.unit_weights == [1.0]
    kto = Kto().plan(seqs)
    assert kto.units == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]] and kto.unit_weights == [1.0] * 5


def test_what_carries_a_signal_depends_on_the_algorithm():
    flat = collate(batch([[0.0, 0.0], [1.0, 1.0]]), pad_id=0)
    assert not Grpo().carries_signal(flat) and Grpo(kl_coef=0.1).carries_signal(flat)
    assert Rft().carries_signal(flat)  # the group at 1.0 is kept, however alike
    assert not Rft(RftConfig(min_reward=2.0)).carries_signal(flat)
    assert not Dpo().carries_signal(flat)  # no group with a best and a worst
    assert Kto().carries_signal(flat)


def test_the_setting_picks_the_algorithm_and_its_config():
    assert isinstance(build_objective(TrainerSettings()), Grpo)
    dpo = build_objective(TrainerSettings(trainer_algorithm="dpo", trainer_dpo_beta=0.3, trainer_dpo_reference="base"))
    assert dpo == Dpo(DpoConfig(0.3), "base")
    kto = build_objective(TrainerSettings(trainer_algorithm="kto", trainer_kto_undesirable_weight=1.3, trainer_kto_threshold=0.7))
    assert kto.config == KtoConfig(0.1, 1.0, 1.3, 0.7) and kto.reference == "behaviour"
    assert build_objective(TrainerSettings(trainer_algorithm="rft", trainer_rft_mode="best")).config == RftConfig("best", 1.0)


@pytest.mark.parametrize("bad", [dict(trainer_algorithm="dpo", trainer_dpo_beta=0.0), dict(trainer_kto_beta=-1.0),
                                 dict(trainer_kto_desirable_weight=0.0), dict(trainer_kto_threshold=math.nan),
                                 dict(trainer_rft_min_reward=math.nan), dict(trainer_algorithm="sft"),
                                 dict(trainer_algorithm="rft", trainer_kl_coef=0.1),
                                 dict(trainer_algorithm="kto", trainer_backend="verl")])
def test_bad_algorithm_settings_stop_the_start(bad):
    with pytest.raises(ValueError):
        TrainerSettings(**bad)


def test_every_algorithm_setting_has_a_readme_row():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    names = [n for n in TrainerSettings.model_fields if n.startswith(("trainer_algorithm", "trainer_rft_", "trainer_dpo_", "trainer_kto_"))]
    assert len(names) == 10
    for name in names:
        assert f"`LW_{name.upper()}`" in readme, f"LW_{name.upper()} has no row in README.md's settings table"


# One update on the tiny model. -----------------------------------------------------------------------------------

REWARDS = [[1.0, 0.0, 0.5], [0.0, 1.0]]


@pytest.fixture(scope="module")
def tiny():
    from lightwire.model_cache import ensure_model

    return ensure_model("tiny-llama", CommonSettings().cache_dir)


def backend(tiny, objective, micro_batch: int = 2):
    from lightwire.services.trainer.torch_backend import TorchBackend

    torch.manual_seed(0)
    return TorchBackend(tiny, device="cpu", lr=1e-3, micro_batch=micro_batch, objective=objective)


def on_policy(policy, transitions: int = 1):
    """The fixed batch with the behaviour logprobs the policy itself gives (as if it had sampled it)."""
    seqs = collate(batch(REWARDS, transitions), policy.pad_id)
    with torch.no_grad():
        seqs.behaviour_logprobs = policy.sequence_logprobs(seqs) * seqs.response_mask
    return seqs


def rollout_logprobs(policy, seqs) -> torch.Tensor:
    """Each rollout's summed logprob of its model tokens: [R]."""
    with torch.no_grad():
        per_row = (policy.sequence_logprobs(seqs) * seqs.response_mask).sum(-1)
    rollouts = Rollouts.of(seqs)
    return torch.zeros(len(rollouts.rewards)).index_add(0, rollouts.of_row, per_row)


@pytest.mark.parametrize("objective, up, down", [
    # rft at 0.5: rollouts r00 (1.0), r02 (0.5), r11 (1.0) are kept
    (Rft(RftConfig("threshold", 0.5)), [0, 2, 4], []),
    # dpo: r00 over r01, r11 over r10
    (Dpo(DpoConfig(beta=0.5)), [0, 4], [1, 3]),
    (Dpo(DpoConfig(beta=0.5), "base"), [0, 4], [1, 3]),
    # kto at 0.5: r00, r02, r11 desirable; r01, r10 not
    (Kto(KtoConfig(beta=0.5)), [0, 2, 4], [1, 3]),
], ids=["rft", "dpo", "dpo-base", "kto"])
def test_one_update_moves_the_preferred_rollouts_up(tiny, objective, up, down):
    policy = backend(tiny, objective)
    seqs = on_policy(policy)
    before = rollout_logprobs(policy, seqs)
    metrics = policy.update(seqs)
    after = rollout_logprobs(policy, seqs)
    moved = after - before
    assert math.isfinite(metrics.loss) and metrics.tokens > 0
    assert all(moved[i] > 0 for i in up), moved.tolist()
    assert all(moved[i] < 0 for i in down), moved.tolist()
    if isinstance(objective, Dpo):
        # on policy the margin starts at 0: the loss is log 2
        assert metrics.loss == pytest.approx(math.log(2), abs=1e-4)


@pytest.mark.parametrize("objective", [Dpo(DpoConfig(beta=0.5)), Kto(KtoConfig(beta=0.5))], ids=["dpo", "kto"])
def test_the_update_does_not_depend_on_the_micro_batches(tiny, objective):
    """Pairs and rollouts of several transitions go into a micro-batch whole, and KTO's z0 is the whole batch's."""
    one, many = backend(tiny, objective, micro_batch=1), backend(tiny, objective, micro_batch=16)
    seqs = on_policy(one, transitions=2)
    seqs.behaviour_logprobs = seqs.behaviour_logprobs - 0.3 * seqs.response_mask  # off policy: z0 > 0 for kto
    a, b = one.update(seqs), many.update(seqs)
    assert a.loss == pytest.approx(b.loss, rel=1e-5)
    # The gradients (kept after the step), not the weights: Adam's first step is about lr * sign(g), which turns float
    # noise on a near-zero gradient into a full step.
    grads = [(p.grad, q.grad) for p, q in zip(one.model.parameters(), many.model.parameters())]
    scale = max(float(g.abs().max()) for g, _ in grads)
    gap = max(float((g - h).abs().max()) for g, h in grads)
    assert scale > 0 and gap < 1e-4 * scale

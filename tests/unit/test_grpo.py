"""GRPO math against hand-computed values."""

import math

import pytest
import torch

from lightwire.services.trainer.grpo import LossConfig, group_advantages, policy_loss, token_logprobs


def test_group_advantages_normalise_within_each_group():
    rewards = torch.tensor([1.0, 0.0, 1.0, 2.0, 2.0])
    groups = torch.tensor([0, 0, 0, 1, 1])
    adv = group_advantages(rewards, groups)
    # group 0: mean 2/3, sample std sqrt(((1/3)^2 * 2 + (2/3)^2) / 2) = sqrt(1/3) = 0.57735
    s = math.sqrt(1 / 3)
    assert adv[:3].tolist() == pytest.approx([(1 / 3) / s, (-2 / 3) / s, (1 / 3) / s], rel=1e-4)
    # group 1: identical rewards -> no signal
    assert adv[3:].tolist() == [0.0, 0.0]
    assert group_advantages(rewards, groups, scale_by_std=False)[:3].tolist() == pytest.approx([1 / 3, -2 / 3, 1 / 3])


def test_transition_scores_are_centred_and_scaled_by_their_groups_rollout_rewards():
    # group 0: rollout rewards [2, 0, 4] -> mean 2, sample std sqrt((0 + 4 + 4) / 2) = 2
    # group 1: rollout rewards [0.5, 0.5] -> no spread; group 2: one rollout, reward 1 -> mean 1, no std
    rewards, groups = torch.tensor([2.0, 0.0, 4.0, 0.5, 0.5, 1.0]), torch.tensor([0, 0, 0, 1, 1, 2])
    # per-transition credit: the first rollout's two steps scored 2 and 1, one of group 1's 0.2, group 2's 0.4
    scores, score_group = torch.tensor([2.0, 1.0, 0.0, 4.0, 0.5, 0.2, 1.0, 0.4]), torch.tensor([0, 0, 0, 0, 1, 1, 2, 2])
    adv = group_advantages(rewards, groups, scores=scores, score_group=score_group)
    # group 0: (s - 2) / 2; group 1: zeros however the steps were credited; group 2: s - 1, not scaled
    assert adv.tolist() == pytest.approx([0.0, -0.5, -1.0, 1.0, 0.0, 0.0, 0.0, -0.6], rel=1e-5, abs=1e-6)
    centred = group_advantages(rewards, groups, scale_by_std=False, scores=scores, score_group=score_group)
    assert centred.tolist() == pytest.approx([0.0, -1.0, -2.0, 2.0, 0.0, -0.3, 0.0, -0.6], rel=1e-5, abs=1e-6)
    with pytest.raises(ValueError, match="go together"):
        group_advantages(rewards, groups, scores=scores)
    with pytest.raises(ValueError, match="same 1-d shape"):
        group_advantages(rewards, groups, scores=scores, score_group=score_group[:2])


def test_token_logprobs_apply_temperature():
    logits = torch.tensor([[[0.0, math.log(3.0)]]])  # p = [1/4, 3/4] at T=1
    assert token_logprobs(logits, torch.tensor([[1]])).item() == pytest.approx(math.log(0.75))
    # T=2: logits/2 -> [0, log(3)/2] -> p1 = sqrt3 / (1 + sqrt3)
    assert token_logprobs(logits, torch.tensor([[1]]), 2.0).item() == pytest.approx(math.log(math.sqrt(3) / (1 + math.sqrt(3))))


def test_on_policy_loss_is_minus_the_mean_advantage_and_its_gradient_is_the_policy_gradient():
    logp = torch.tensor([[-1.0, -2.0, -0.5]], requires_grad=True)
    out = policy_loss(logp, logp.detach(), torch.tensor([2.0]), torch.tensor([[1, 1, 0]]))
    # ratio 1 everywhere -> per-token loss -A = -2 on the two model tokens -> mean -2
    assert out.loss.item() == pytest.approx(-2.0) and out.clip_fraction == 0.0 and out.ratio_mean == pytest.approx(1.0)
    out.loss.backward()
    # d/dlogp of -(exp(logp - old) * A) / 2 tokens = -A/2 = -1 on model tokens, 0 on the masked one
    assert logp.grad[0].tolist() == pytest.approx([-1.0, -1.0, 0.0])


def test_ratios_outside_the_clip_range_stop_the_gradient():
    old = torch.log(torch.tensor([[0.5, 0.5]]))
    new = torch.log(torch.tensor([[0.9, 0.5]])).requires_grad_(True)  # ratio 1.8 on token 0, 1.0 on token 1
    out = policy_loss(new, old, torch.tensor([1.0]), torch.ones(1, 2), LossConfig(clip_low=0.2, clip_high=0.28))
    # token 0: min(1.8, 1.28) * 1 = 1.28 (clipped, no gradient); token 1: 1.0 -> loss -(1.28 + 1.0) / 2 = -1.14
    assert out.loss.item() == pytest.approx(-1.14) and out.clip_fraction == pytest.approx(0.5)
    out.loss.backward()
    assert new.grad[0, 0].item() == 0.0 and new.grad[0, 1].item() == pytest.approx(-0.5)


def test_each_sequence_counts_once_whatever_its_length():
    logp = torch.zeros(2, 4)
    mask = torch.tensor([[1, 0, 0, 0], [1, 1, 1, 1]])
    out = policy_loss(logp, logp, torch.tensor([1.0, 3.0]), mask)
    # per sequence: -1 and -3 -> mean -2 (token-level averaging would give (-1 - 12) / 5 = -2.6)
    assert out.loss.item() == pytest.approx(-2.0)
    weighted = policy_loss(logp, logp, torch.tensor([1.0, 3.0]), mask, sequence_weights=torch.tensor([1.0, 0.0]))
    assert weighted.loss.item() == pytest.approx(-1.0)


def test_k3_kl_penalty():
    logp = torch.log(torch.tensor([[0.5]]))
    ref = torch.log(torch.tensor([[0.25]]))
    out = policy_loss(logp, logp, torch.tensor([0.0]), torch.ones(1, 1), LossConfig(kl_coef=0.1), ref_logprobs=ref)
    # diff = log(0.25/0.5) = -ln2: k3 = 0.5 + ln2 - 1 = 0.19315
    k3 = 0.5 + math.log(2) - 1
    assert out.kl == pytest.approx(k3, rel=1e-5) and out.loss.item() == pytest.approx(0.1 * k3, rel=1e-5)


def test_advantages_ignore_a_shift_of_a_groups_rewards_and_single_rollout_groups():
    rewards = torch.tensor([0.0, 1.0, 5.0])
    groups = torch.tensor([7, 7, 9])
    # group 7: mean 0.5, sample std sqrt((0.25 + 0.25) / 1) = 0.70711 -> +-0.5 / 0.70711 = -+0.70711
    adv = group_advantages(rewards, groups)
    assert adv.tolist() == pytest.approx([-1 / math.sqrt(2), 1 / math.sqrt(2), 0.0], rel=1e-5)
    # adding 10 to every reward of a group changes nothing: only differences inside a group matter
    assert group_advantages(rewards + torch.tensor([10.0, 10.0, 0.0]), groups).tolist() == pytest.approx(adv.tolist(), rel=1e-5)
    with pytest.raises(ValueError, match="same 1-d shape"):
        group_advantages(rewards, torch.tensor([0, 1]))


def test_zero_advantages_give_zero_gradient_whatever_the_ratio():
    # A group whose rollouts all scored the same carries no signal: no update, even off-policy.
    advantages = group_advantages(torch.tensor([0.7, 0.7, 0.7]), torch.tensor([0, 0, 0]))
    assert advantages.tolist() == [0.0, 0.0, 0.0]
    logp = torch.tensor([[-0.1, -3.0], [-1.0, -1.0], [-2.0, -0.2]], requires_grad=True)
    behaviour = torch.tensor([[-1.0, -1.0], [-0.5, -4.0], [-2.0, -0.3]])
    out = policy_loss(logp, behaviour, advantages, torch.ones(3, 2))
    out.loss.backward()
    assert out.loss.item() == 0.0 and logp.grad.abs().sum().item() == 0.0


def test_a_negative_advantage_is_clipped_below_and_flows_above():
    old = torch.log(torch.tensor([[0.5, 0.5]]))
    # token 0: ratio 0.2 / 0.5 = 0.4 (below 1 - 0.2 = 0.8); token 1: 0.9 / 0.5 = 1.8 (above 1.28)
    new = torch.log(torch.tensor([[0.2, 0.9]])).requires_grad_(True)
    out = policy_loss(new, old, torch.tensor([-1.0]), torch.ones(1, 2), LossConfig(clip_low=0.2, clip_high=0.28))
    # A = -1: token 0 min(0.4 * -1, 0.8 * -1) = -0.8 (clipped: no gradient); token 1 min(-1.8, -1.28) = -1.8 (flows)
    # loss = -(-0.8 - 1.8) / 2 = 1.3; d/dlogp1 of -(r1 * A) / 2 = -(1.8 * -1) / 2 = 0.9
    assert out.loss.item() == pytest.approx(1.3, rel=1e-5)
    # only token 0 lost its gradient to the clip -> 1 of 2 tokens; ratio mean (0.4 + 1.8) / 2 = 1.1
    assert out.clip_fraction == pytest.approx(0.5) and out.ratio_mean == pytest.approx(1.1, rel=1e-5)
    out.loss.backward()
    assert new.grad[0, 0].item() == 0.0 and new.grad[0, 1].item() == pytest.approx(0.9, rel=1e-5)


def test_masked_positions_never_reach_the_loss_even_if_garbage():
    logp = torch.tensor([[-1.0, 0.0]], requires_grad=True)
    behaviour = torch.tensor([[-1.0, -1e4]])  # position 1 is padding with a wild value: exp(1e4) would be inf
    out = policy_loss(logp, behaviour, torch.tensor([1.0]), torch.tensor([[1, 0]]), ref_logprobs=torch.tensor([[-1.0, float("-inf")]]))
    out.loss.backward()
    # only token 0 counts: ratio 1, loss -1; kl at token 0 = 0
    assert out.loss.item() == pytest.approx(-1.0) and out.kl == 0.0 and torch.isfinite(logp.grad).all()
    assert logp.grad[0, 1].item() == 0.0


def test_a_sequence_without_model_tokens_counts_nothing():
    logp = torch.zeros(2, 2)
    # sequence 1 is all observation: the mean is over sequence 0 alone -> -A0 = -2 (not (-2 + 0) / 2 = -1)
    out = policy_loss(logp, logp, torch.tensor([2.0, 5.0]), torch.tensor([[1, 1], [0, 0]]))
    assert out.loss.item() == pytest.approx(-2.0)


def test_kl_term_pulls_towards_the_reference():
    logp = torch.log(torch.tensor([[0.5]])).requires_grad_(True)
    ref = torch.log(torch.tensor([[0.25]]))
    out = policy_loss(logp, logp.detach(), torch.tensor([0.0]), torch.ones(1, 1), LossConfig(kl_coef=0.1), ref_logprobs=ref)
    out.loss.backward()
    # d/dlogp of 0.1 * (exp(ref - logp) - (ref - logp) - 1) = 0.1 * (-exp(ref - logp) + 1) = 0.1 * (1 - 0.5) = 0.05 > 0:
    # gradient descent lowers logp, towards the reference's 0.25
    assert logp.grad.item() == pytest.approx(0.05, rel=1e-5)
    # the KL metric is reported whenever a reference is given, even if it is not in the loss
    metric_only = policy_loss(logp, logp, torch.tensor([0.0]), torch.ones(1, 1), ref_logprobs=ref)
    assert metric_only.kl == pytest.approx(0.5 + math.log(2) - 1, rel=1e-5) and metric_only.loss.item() == 0.0


def test_token_logprobs_match_a_hand_softmax_and_reject_bad_input():
    logits = torch.tensor([[[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]], dtype=torch.bfloat16)
    got = token_logprobs(logits, torch.tensor([[2, 0]]))
    # log softmax [1 2 3] at 2: 3 - log(e + e^2 + e^3) = -0.40761; uniform over 3: -log 3 = -1.09861
    assert got.dtype == torch.float32
    assert got.tolist()[0] == pytest.approx([-0.40761, -1.09861], abs=1e-4)
    with pytest.raises(ValueError, match="temperature"):
        token_logprobs(logits, torch.tensor([[2, 0]]), 0.0)
    with pytest.raises(ValueError, match="do not match"):
        token_logprobs(logits, torch.tensor([[2]]))


def test_loss_config_is_validated_at_construction():
    with pytest.raises(ValueError, match="clip_low"):
        LossConfig(clip_low=1.0)
    with pytest.raises(ValueError, match="kl_coef"):
        LossConfig(kl_coef=-0.1)

"""RFT math against hand-computed values: which rollouts are kept, and the NLL of their model tokens."""

import math

import pytest
import torch

from lightwire.services.trainer.rft import RftConfig, rft_keep, rft_loss


def test_threshold_keeps_every_rollout_that_reaches_the_least_reward():
    rewards, groups = torch.tensor([1.0, 0.0, 0.5, 1.0]), torch.tensor([0, 0, 1, 1])
    assert rft_keep(rewards, groups, RftConfig("threshold", 0.5)).tolist() == [True, False, True, True]
    # the default: full marks only (1.0)
    assert rft_keep(rewards, groups).tolist() == [True, False, False, True]


def test_best_keeps_one_rollout_per_group_the_first_of_equals_if_it_reaches_the_floor():
    rewards, groups = torch.tensor([1.0, 0.0, 0.5, 1.0, 0.3, 0.3]), torch.tensor([0, 0, 1, 1, 2, 2])
    # no floor: group 0 -> rollout 0, group 1 -> rollout 3, group 2 ties at 0.3 -> the first, rollout 4
    assert rft_keep(rewards, groups, RftConfig("best", -math.inf)).tolist() == [True, False, False, True, True, False]
    # floor 0.5: group 2's best (0.3) is not good enough
    assert rft_keep(rewards, groups, RftConfig("best", 0.5)).tolist() == [True, False, False, True, False, False]
    with pytest.raises(ValueError, match="same 1-d shape"):
        rft_keep(rewards, groups[:2])


def test_loss_is_the_mean_over_rows_of_each_rows_mean_token_nll():
    logp = torch.tensor([[-1.0, -2.0, float("-inf")], [-3.0, 0.0, 0.0]], requires_grad=True)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    out = rft_loss(logp, mask)
    # row 0: (1 + 2) / 2 = 1.5; row 1: 3 / 1 = 3 -> (1.5 + 3) / 2 = 2.25 (token-level: (1 + 2 + 3) / 3 = 2); the -inf is masked
    assert out.loss.item() == pytest.approx(2.25)
    out.loss.backward()
    # d/dlogp: -1 / (tokens of the row) / (rows) -> row 0: -1/2/2 = -0.25 per token; row 1: -1/1/2 = -0.5; masked: 0
    assert logp.grad.flatten().tolist() == pytest.approx([-0.25, -0.25, 0.0, -0.5, 0.0, 0.0])
    weighted = rft_loss(logp, mask, torch.tensor([1.0, 0.5]))
    # (1 * 1.5 + 0.5 * 3) / 1.5 = 2
    assert weighted.loss.item() == pytest.approx(2.0)


def test_a_row_without_model_tokens_counts_nothing_and_metrics_compare_with_the_behaviour():
    logp = torch.tensor([[-1.0, -2.0], [-5.0, -5.0]])
    behaviour = logp - torch.tensor([[math.log(2.0), 0.0], [0.0, 0.0]])  # ratio 2 on token (0, 0), 1 elsewhere
    out = rft_loss(logp, torch.tensor([[1, 1], [0, 0]]), behaviour_logprobs=behaviour)
    # only row 0: (1 + 2) / 2 = 1.5; ratio mean over its two tokens (2 + 1) / 2 = 1.5; no reference, no clip
    assert out.loss.item() == pytest.approx(1.5) and out.ratio_mean == pytest.approx(1.5)
    assert out.kl == 0.0 and out.clip_fraction == 0.0


def test_config_is_validated_at_construction():
    with pytest.raises(ValueError, match="threshold or best"):
        RftConfig("all")
    with pytest.raises(ValueError, match="nan"):
        RftConfig(min_reward=math.nan)

"""Sampling distribution, stop strings, streaming hold-back, context checks (hand-computed values)."""

import math

import pytest
import torch

from lightwire.services.inference.decoding import find_stop, processed_logprobs, sample_token, sequence_seed, streamable_prefix
from lightwire.services.inference.engine import ContextLengthExceeded, InferenceError, SamplingOptions, check_context, path_from_uri


def test_temperature_scales_before_softmax():
    logits = torch.tensor([2.0, 1.0, 0.0])
    logp = processed_logprobs(logits, temperature=0.5, top_p=1.0)
    expected = torch.log_softmax(torch.tensor([4.0, 2.0, 0.0]), -1)
    assert torch.allclose(logp, expected)


def test_greedy_reports_temperature_one():
    logits = torch.tensor([2.0, 1.0, 0.0])
    assert torch.allclose(processed_logprobs(logits, 0.0, 1.0), torch.log_softmax(logits, -1))
    assert sample_token(processed_logprobs(logits, 0.0, 1.0), 0.0, None) == 0


def test_top_p_keeps_the_nucleus_and_renormalises():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    logp = processed_logprobs(probs.log(), temperature=1.0, top_p=0.8)
    # 0.5 + 0.3 reaches 0.8: the nucleus is the first two tokens.
    assert math.isclose(logp[0].exp().item(), 0.5 / 0.8, rel_tol=1e-6)
    assert math.isclose(logp[1].exp().item(), 0.3 / 0.8, rel_tol=1e-6)
    assert logp[2].item() == float("-inf") and logp[3].item() == float("-inf")


def test_top_p_always_keeps_the_top_token():
    logp = processed_logprobs(torch.tensor([5.0, 0.0, 0.0]), 1.0, 0.01)
    assert logp[0].item() == 0.0


def test_seeded_sampling_is_reproducible():
    logp = torch.log_softmax(torch.randn(100), -1)
    draws = [[sample_token(logp, 1.0, g) for _ in range(20)] for g in (torch.Generator().manual_seed(7), torch.Generator().manual_seed(7))]
    assert draws[0] == draws[1]
    assert sequence_seed(7, 0) != sequence_seed(7, 1)


def test_find_stop_earliest_match():
    assert find_stop("hello world. bye", ("bye", ".")) == 11
    assert find_stop("hello", ("x",)) is None
    assert find_stop("abc", ()) is None


def test_streaming_holds_back_possible_stop_prefix():
    assert streamable_prefix("hello wor", ("world",), finished=False) == "hello "
    assert streamable_prefix("hello wor", ("world",), finished=True) == "hello wor"
    assert streamable_prefix("caf\ufffd", (), finished=False) == "caf"
    assert streamable_prefix("plain", ("###",), finished=False) == "plain"


def test_context_check():
    assert check_context(10, 100, 50) == 40
    assert check_context(10, 5, 50) == 5
    with pytest.raises(ContextLengthExceeded):
        check_context(50, 1, 50)
    with pytest.raises(InferenceError):
        check_context(0, 1, 50)


@pytest.mark.parametrize("kwargs", [{"temperature": -1}, {"top_p": 0}, {"top_p": 1.5}, {"max_tokens": 0}, {"n": 0}, {"stop": ("",)}])
def test_sampling_options_reject_nonsense(kwargs):
    with pytest.raises(InferenceError):
        SamplingOptions(**kwargs)


def test_weight_uris():
    assert path_from_uri("file:///a/b") == "/a/b"
    assert path_from_uri("/a/b") == "/a/b"
    with pytest.raises(InferenceError):
        path_from_uri("s3://bucket/x")

"""Per-step pure logic of decoding: the sampling distribution, stop strings, streaming text hold-back.

Kept free of models and batching so it can be tested against hand-computed values.
"""

from __future__ import annotations

import torch

_NEG_INF = float("-inf")


def processed_logprobs(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """log p of the distribution a token is sampled from, for one row of logits [V].

    Temperature first, then top_p: tokens outside the smallest set whose probability reaches top_p get -inf,
    the rest are renormalised. Greedy (temperature 0) is reported at temperature 1: its own distribution is a
    point mass, useless as a behaviour logprob.
    """
    scaled = logits.float() / (temperature if temperature > 0 else 1.0)
    logp = torch.log_softmax(scaled, dim=-1)
    if top_p >= 1.0:
        return logp
    sorted_logp, order = torch.sort(logp, descending=True)
    cumulative = sorted_logp.exp().cumsum(dim=-1)
    # Keep a token while the mass before it is below top_p (so the top token is always kept).
    keep_sorted = (cumulative - sorted_logp.exp()) < top_p
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    return torch.log_softmax(scaled.masked_fill(~keep, _NEG_INF), dim=-1)


def sample_token(logp: torch.Tensor, temperature: float, generator: torch.Generator | None) -> int:
    if temperature <= 0:
        return int(torch.argmax(logp).item())
    return int(torch.multinomial(logp.exp(), 1, generator=generator).item())


def find_stop(text: str, stops: tuple[str, ...], search_from: int = 0) -> int | None:
    """Index in `text` where the earliest stop string begins, looking only at matches ending after `search_from`."""
    best: int | None = None
    for stop in stops:
        at = text.find(stop, max(0, search_from - len(stop) + 1))
        if at != -1 and (best is None or at < best):
            best = at
    return best


def streamable_prefix(text: str, stops: tuple[str, ...], finished: bool) -> str:
    """The part of `text` safe to stream now: not a half-decoded UTF-8 character, not a possible stop prefix."""
    if finished:
        return text
    if text.endswith("\ufffd"):  # an incomplete multi-byte character; its next token completes it
        text = text.rstrip("\ufffd")
    hold = 0
    for stop in stops:
        for k in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:k]):
                hold = max(hold, k)
                break
    return text[: len(text) - hold]


def sequence_seed(seed: int, index: int) -> int:
    """A distinct, reproducible seed for sequence `index` of a request seeded with `seed`."""
    return (seed * 1_000_003 + index) % (1 << 63)

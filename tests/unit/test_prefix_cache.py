"""Which cached prefix a prompt reuses, and what the cache keeps."""

from __future__ import annotations

import torch

from lightwire.services.inference.prefix_cache import PrefixCache, common_prefix


def kv(prompt: tuple[int, ...]) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    # One layer, one head, head dim 1: each position's key is its token, so a slice shows which tokens it holds.
    t = torch.tensor(prompt, dtype=torch.float32).view(1, -1, 1)
    return (t,), (-t,)


def store(cache: PrefixCache, prompt: tuple[int, ...]) -> None:
    cache.store(prompt, *kv(prompt))


def test_common_prefix():
    assert common_prefix((1, 2, 3), (1, 2, 4, 5)) == 2
    assert common_prefix((1, 2), (1, 2, 3)) == 2
    assert common_prefix((), (1,)) == 0


def test_the_longest_common_prefix_is_reused_and_the_last_prompt_token_is_left_to_prefill():
    cache = PrefixCache(4, min_tokens=3)
    store(cache, (1, 2, 3, 4, 5, 6))
    store(cache, (1, 2, 3, 9, 9, 9))
    hit = cache.lookup((1, 2, 3, 4, 5, 7, 8))
    assert hit.length == 5 and hit.keys[0].flatten().tolist() == [1, 2, 3, 4, 5]
    assert hit.values[0].flatten().tolist() == [-1, -2, -3, -4, -5]
    # The very same prompt again: all but its last token, whose logits start the completion.
    assert cache.lookup((1, 2, 3, 4, 5, 6)).length == 5


def test_a_prefix_shorter_than_min_tokens_is_no_hit():
    cache = PrefixCache(4, min_tokens=3)
    store(cache, (1, 2, 3, 4))
    assert cache.lookup((1, 2, 7, 7)) is None
    assert cache.lookup((5, 6, 7)) is None


def test_least_recently_used_prompts_go_first_and_an_extended_prompt_replaces_its_start():
    cache = PrefixCache(2, min_tokens=2)
    store(cache, (1, 1, 1))
    store(cache, (2, 2, 2))
    cache.lookup((1, 1, 1, 5))  # (1, 1, 1) is now the more recent
    store(cache, (3, 3, 3))
    assert cache.lookup((2, 2, 2, 5)) is None
    assert cache.lookup((1, 1, 1, 5)).length == 3
    store(cache, (1, 1, 1, 5, 6))  # the next turn of the same conversation
    assert cache.lookup((1, 1, 1, 5, 6, 7)).length == 5
    assert cache.lookup((3, 3, 3, 4)).length == 3, "the shorter entry made room; the other stayed"


def test_zero_entries_is_off():
    cache = PrefixCache(0, min_tokens=1)
    store(cache, (1, 2, 3))
    assert not cache.enabled and cache.lookup((1, 2, 3, 4)) is None


def test_a_held_prompt_is_not_wanted_again_and_short_ones_never():
    cache = PrefixCache(2, min_tokens=3)
    assert cache.wants((1, 2, 3))
    store(cache, (1, 2, 3))
    assert not cache.wants((1, 2, 3)) and not cache.wants((1, 2)) and cache.wants((1, 2, 3, 4))

"""The keys and values of recent prompts, so a prompt that starts like one of them prefills only what differs.

An agent's calls share most of their prompt: the system message and worked examples of every call, the whole
first prompt across a GRPO group's rollouts, every earlier turn in a multi-turn rollout. On a CPU the prefill of
those ~500 tokens costs far more than decoding 48 tokens, so the engine keeps the last prompts' KV (per served
weights version: new weights start an empty cache) and reuses the longest common prefix.

Keys are cached after RoPE at positions 0..n-1, and a reused prefix sits at the same positions again, so the
numbers are those of a whole prefill up to float rounding.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class PrefixHit:
    length: int  # prompt tokens whose KV comes from the cache
    keys: tuple[torch.Tensor, ...]  # per layer, [kv heads, length, head dim]
    values: tuple[torch.Tensor, ...]


@dataclass
class PrefixStats:
    """Counts across weight versions (each version has its own cache, one engine one stats)."""

    hits: int = 0  # prompts that reused a cached prefix
    reused_tokens: int = 0
    prefilled_tokens: int = 0


def common_prefix(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class PrefixCache:
    """Least-recently-used prompts and their per-layer KV. Used from the engine's decode thread only."""

    def __init__(self, entries: int, stats: PrefixStats | None = None, min_tokens: int = 32):
        self._entries = entries
        self._min_tokens = min_tokens
        self._store: OrderedDict[tuple[int, ...], tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]] = OrderedDict()
        self.stats = stats or PrefixStats()

    @property
    def enabled(self) -> bool:
        return self._entries > 0

    def lookup(self, prompt: tuple[int, ...]) -> PrefixHit | None:
        """The longest cached prefix of `prompt`, leaving at least its last token to prefill (its logits start the
        completion); None when no prefix reaches min_tokens."""
        best, best_key = 0, None
        for key in self._store:
            n = common_prefix(key, prompt)
            if n > best:
                best, best_key = n, key
        best = min(best, len(prompt) - 1)
        if best_key is None or best < self._min_tokens:
            return None
        self._store.move_to_end(best_key)
        keys, values = self._store[best_key]
        return PrefixHit(best, tuple(k[:, :best] for k in keys), tuple(v[:, :best] for v in values))

    def count(self, prompt_tokens: int, reused: int) -> None:
        self.stats.hits += reused > 0
        self.stats.reused_tokens += reused
        self.stats.prefilled_tokens += prompt_tokens - reused

    def wants(self, prompt: tuple[int, ...]) -> bool:
        """Whether `store` would keep this prompt: asked first, so a prompt already held (a GRPO group's siblings,
        an n>1 request) costs no copy of its KV. A held prompt counts as used."""
        if not self.enabled or len(prompt) < self._min_tokens:
            return False
        if prompt in self._store:
            self._store.move_to_end(prompt)
            return False
        return True

    def store(self, prompt: tuple[int, ...], keys: tuple[torch.Tensor, ...], values: tuple[torch.Tensor, ...]) -> None:
        if not self.wants(prompt):
            return
        # A prompt that only extends a cached one replaces it: the longer one serves every lookup the shorter did.
        for key in [k for k in self._store if len(k) < len(prompt) and prompt[: len(k)] == k]:
            del self._store[key]
        self._store[prompt] = (keys, values)
        while len(self._store) > self._entries:
            self._store.popitem(last=False)

"""One batch of sequences decoded together on a transformers causal LM: left-padded prefill, then one token
per step for every live row, sharing a KV cache; rows that finish are cut out of the cache, and new sequences
can join between steps (prefilled on their own, then both caches left-padded to one length and stacked).
Prompt prefixes seen recently are not prefilled again (prefix_cache).

Invariant between calls: the attention mask is as wide as the KV cache, and `_logits` holds each live row's
next-token logits.

Synchronous: the engine runs `prefill` and `step` on its decode thread, so the event loop never blocks on torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from transformers import DynamicCache

from lightwire.services.inference.decoding import find_stop, processed_logprobs, sample_token
from lightwire.services.inference.engine import FinishReason, SamplingOptions
from lightwire.services.inference.prefix_cache import PrefixCache, PrefixHit

Decode = Callable[[list[int]], str]


@dataclass
class Sequence:
    """One completion being generated (a request with n=3 owns three)."""

    prompt: tuple[int, ...]
    index: int
    sampling: SamplingOptions
    max_tokens: int
    generator: torch.Generator | None
    # Decode text every step: needed for stop strings and streaming; otherwise text is decoded once at the end.
    track_text: bool = False
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    text: str = ""
    finish_reason: FinishReason | None = None
    aborted: bool = False

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None or self.aborted


class DecodeBatch:
    def __init__(self, model: torch.nn.Module, sequences: list[Sequence], *, pad_id: int, eos_ids: frozenset[int], decode: Decode,
                 prefixes: PrefixCache):
        self.model = model
        self._prefixes = prefixes
        self.active = list(sequences)
        self._pad_id = pad_id
        self._eos_ids = eos_ids
        self._decode = decode
        self._device = next(model.parameters()).device
        self._cache = DynamicCache()
        self._mask: torch.Tensor | None = None
        self._positions: torch.Tensor | None = None
        self._logits: torch.Tensor | None = None

    @torch.inference_mode()
    def prefill(self) -> None:
        """One forward over every row's prompt, less the part whose KV the prefix cache already holds.

        Row layout, C = the longest cached part, W = the longest rest: [pad | cached] [pad | rest]; the mask marks
        real tokens and positions count them only, so every row sees the positions it would alone.
        """
        hits = [self._prefixes.lookup(s.prompt) for s in self.active]
        cached = [h.length if h else 0 for h in hits]
        rests = [s.prompt[c:] for s, c in zip(self.active, cached, strict=True)]
        c_width, width = max(cached), max(len(r) for r in rests)
        ids = torch.full((len(self.active), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(self.active), c_width + width), dtype=torch.long)
        for row, (rest, c) in enumerate(zip(rests, cached, strict=True)):
            ids[row, width - len(rest) :] = torch.tensor(rest, dtype=torch.long)
            mask[row, c_width - c : c_width] = 1
            mask[row, c_width + width - len(rest) :] = 1
            self._prefixes.count(len(self.active[row].prompt), c)
        if c_width:
            self._cache = DynamicCache(ddp_cache_data=_stacked_prefixes(hits, c_width))
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, c_width:]
        self._mask, self._positions = mask.to(self._device), positions.to(self._device)
        self._forward(ids.to(self._device), self._positions)
        if self._prefixes.enabled:
            for row, seq in enumerate(self.active):
                if not self._prefixes.wants(seq.prompt):  # held already, or a sibling of this batch stored it
                    continue
                real = self._mask[row].nonzero().squeeze(-1)
                self._prefixes.store(seq.prompt, tuple(layer.keys[row][:, real] for layer in self._cache.layers),
                                     tuple(layer.values[row][:, real] for layer in self._cache.layers))

    @torch.inference_mode()
    def step(self) -> list[Sequence]:
        """Sample one token for every live row from the last logits, retire finished rows, run the next forward.

        Returns the sequences that got a token this step (finished ones included).
        """
        assert self._logits is not None, "prefill first"
        stepped = []
        for row, seq in enumerate(self.active):
            if seq.aborted:
                continue
            self._sample_into(seq, self._logits[row])
            stepped.append(seq)
        keep = [row for row, seq in enumerate(self.active) if not seq.finished]
        if len(keep) < len(self.active):
            self._retire(keep)
        if self.active:
            last = torch.tensor([[s.token_ids[-1]] for s in self.active], dtype=torch.long, device=self._device)
            ones = torch.ones((len(self.active), 1), dtype=self._mask.dtype, device=self._device)
            self._mask = torch.cat([self._mask, ones], dim=-1)
            self._positions = self._positions[:, -1:] + 1
            self._forward(last, self._positions)
        return stepped

    @torch.inference_mode()
    def join(self, sequences: list[Sequence]) -> None:
        """Add sequences to the running batch; they sample their first token at the next `step`."""
        assert self.active, "join a running batch; start a new one otherwise"
        newcomers = DecodeBatch(self.model, sequences, pad_id=self._pad_id, eos_ids=self._eos_ids, decode=self._decode,
                                prefixes=self._prefixes)
        newcomers.prefill()
        width = max(self._mask.shape[1], newcomers._mask.shape[1])
        # RoPE is applied before keys are cached, so left-padding a cache with masked zeros moves nothing.
        for mine, theirs in zip(self._cache.layers, newcomers._cache.layers, strict=True):
            mine.keys = torch.cat([_left_pad(mine.keys, width, dim=-2), _left_pad(theirs.keys, width, dim=-2)])
            mine.values = torch.cat([_left_pad(mine.values, width, dim=-2), _left_pad(theirs.values, width, dim=-2)])
        self._mask = torch.cat([_left_pad(self._mask, width, dim=-1), _left_pad(newcomers._mask, width, dim=-1)])
        self._positions = torch.cat([self._positions[:, -1:], newcomers._positions[:, -1:]])
        self._logits = torch.cat([self._logits, newcomers._logits])
        self.active.extend(newcomers.active)

    def _forward(self, ids: torch.Tensor, positions: torch.Tensor) -> None:
        out = self.model(
            input_ids=ids,
            attention_mask=self._mask,
            position_ids=positions,
            past_key_values=self._cache,
            use_cache=True,
            logits_to_keep=1,
        )
        self._logits = out.logits[:, -1, :]

    def _sample_into(self, seq: Sequence, logits: torch.Tensor) -> None:
        opts = seq.sampling
        logp = processed_logprobs(logits, opts.temperature, opts.top_p)
        token = sample_token(logp, opts.temperature, seq.generator)
        seq.token_ids.append(token)
        seq.logprobs.append(float(logp[token]))
        if token in self._eos_ids:
            seq.finish_reason = "stop"
        if seq.track_text:
            seq.text = self._decode(seq.token_ids)
            cut = find_stop(seq.text, opts.stop)
            if cut is not None:
                seq.text = seq.text[:cut]
                seq.finish_reason = "stop"
        if seq.finish_reason is None and len(seq.token_ids) >= seq.max_tokens:
            seq.finish_reason = "length"
        if seq.finish_reason is not None and not seq.track_text:
            seq.text = self._decode(seq.token_ids)

    def _retire(self, keep: list[int]) -> None:
        self.active = [self.active[row] for row in keep]
        if not keep:
            return
        index = torch.tensor(keep, dtype=torch.long, device=self._device)
        self._cache.batch_select_indices(index)
        self._mask = self._mask.index_select(0, index)
        self._positions = self._positions.index_select(0, index)


def _left_pad(t: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    missing = width - t.shape[dim]
    if missing == 0:
        return t
    # F.pad lists (left, right) pairs from the last dimension backwards.
    pad = [0, 0] * (-dim - 1) + [missing, 0]
    return F.pad(t, pad)


def _stacked_prefixes(hits: list[PrefixHit | None], width: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per layer, every row's cached keys and values left-padded to `width` (all padding for a row without a hit)."""
    some = next(h for h in hits if h is not None)
    layers = []
    for layer in range(len(some.keys)):
        keys = [(h.keys[layer] if h else some.keys[layer][:, :0]) for h in hits]
        values = [(h.values[layer] if h else some.values[layer][:, :0]) for h in hits]
        layers.append((torch.stack([_left_pad(k, width, dim=-2) for k in keys]),
                       torch.stack([_left_pad(v, width, dim=-2) for v in values])))
    return layers

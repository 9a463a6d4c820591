"""The transformers engine: requests queue up, a scheduler loop forms batches of up to `max_batch` sequences
(waiting at most `batch_wait_s` for company) and decodes each batch step by step on one decode thread.
Requests arriving while a batch runs join it at the next step boundary, while it has room (continuous batching).

Weight versions: a batch takes the served (version, model) pair when it is formed and keeps it to the end;
`load_weights` builds the new model beside it and swaps the pair, so a reload never pauses or mixes a batch.
After a swap, newcomers no longer join the old-version batch: they wait for the next one.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AutoConfig, AutoTokenizer, PreTrainedModel

from lightwire.services.inference import hf_weights
from lightwire.services.inference.decoding import sequence_seed, streamable_prefix
from lightwire.services.inference.engine import (
    BASE_VERSION,
    CompletionOutput,
    EngineBase,
    EngineHealth,
    GenerationRequest,
    GenerationResult,
    StaleWeights,
    TextDelta,
    WeightFormat,
    check_context,
)
from lightwire.services.inference.hf_batch import DecodeBatch, Sequence
from lightwire.services.inference.prefix_cache import PrefixCache, PrefixStats

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedWeights:
    version: int
    model: PreTrainedModel
    uri: str
    # The KV of this version's recent prompts (PrefixCache(0): off): new weights start an empty one, so no prefix
    # outlives its model.
    prefixes: PrefixCache


@dataclass
class _Pending:
    request: GenerationRequest
    sequences: list[Sequence]
    done: asyncio.Future
    # Streaming requests get deltas here; None for plain generate.
    deltas: asyncio.Queue | None = None
    sent: dict[int, str] = field(default_factory=dict)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class HfEngine(EngineBase):
    name = "hf"

    def __init__(self, model_dir: Path, model_name: str, *, device: str = "auto", dtype: str = "float32",
                 max_batch: int = 16, batch_wait_s: float = 0.005, prefix_cache_entries: int = 16):
        self.model_name = model_name
        self._model_dir = model_dir
        self._device = pick_device(device)
        self._dtype = hf_weights.torch_dtype(dtype, self._device)
        self._max_batch = max_batch
        self._batch_wait_s = batch_wait_s
        self._prefix_cache_entries = prefix_cache_entries
        self.prefix_stats = PrefixStats()  # observable by tests and metrics
        self._tokenizer = AutoTokenizer.from_pretrained(model_dir, clean_up_tokenization_spaces=False)
        self._eos_ids = _eos_ids(model_dir, self._tokenizer)
        config = AutoConfig.from_pretrained(model_dir)
        self._max_context = int(getattr(config, "max_position_embeddings", 0) or self._tokenizer.model_max_length)
        self._base: PreTrainedModel | None = None
        self._served: ServedWeights | None = None
        self._waiting: deque[_Pending] = deque()
        self._wakeup = asyncio.Event()
        self._load_lock = asyncio.Lock()
        # One thread owns every forward pass: torch work is serialised and the event loop stays free.
        self._decode_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lw-decode")
        self._scheduler: asyncio.Task | None = None
        self._running: list[_Pending] = []  # the batch being decoded, failed on close
        self.batches_run = 0  # batches started; observable by tests and metrics
        self.joins = 0  # times waiting requests joined a running batch

    # -- lifecycle -----------------------------------------------------------------------------------------
    async def start(self) -> None:
        self._base = await asyncio.to_thread(hf_weights.load_base, self._model_dir, self._device, self._dtype)
        self._served = ServedWeights(BASE_VERSION, self._base, str(self._model_dir), self._new_prefix_cache())
        self._scheduler = asyncio.create_task(self._schedule(), name="hf-engine-scheduler")

    async def close(self) -> None:
        if self._scheduler:
            self._scheduler.cancel()
            await asyncio.gather(self._scheduler, return_exceptions=True)
        for pending in [*self._running, *self._waiting]:
            if not pending.done.done():
                pending.done.set_exception(RuntimeError("engine closed"))
        self._decode_thread.shutdown(wait=True)

    # -- Engine interface ----------------------------------------------------------------------------------
    @property
    def model_version(self) -> int:
        return self._served.version if self._served else 0

    async def health(self) -> EngineHealth:
        ok = self._served is not None and self._scheduler is not None and not self._scheduler.done()
        return self.health_as("ok" if ok else "starting")

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        pending = self._admit(request, streaming=False)
        return await pending.done

    async def generate_stream(self, request: GenerationRequest) -> AsyncIterator[TextDelta | GenerationResult]:
        pending = self._admit(request, streaming=True)
        try:
            while True:
                item = await pending.deltas.get()
                if isinstance(item, Exception):
                    raise item
                yield item
                if isinstance(item, GenerationResult):
                    return
        finally:
            _abort(pending)

    async def load_weights(self, version: int, uri: str, format: WeightFormat) -> float:
        async with self._load_lock:
            current = self._served
            if version == current.version:
                return 0.0  # re-delivered announcement
            if version < current.version:
                raise StaleWeights(f"version {version} is older than the served version {current.version}")
            t0 = time.monotonic()
            model = await asyncio.to_thread(hf_weights.build_version, self._base, uri, format)
            self._served = ServedWeights(version, model, uri, self._new_prefix_cache())
            seconds = time.monotonic() - t0
            log.info("weights loaded", extra={"version": version, "uri": uri, "format": format, "seconds": round(seconds, 3)})
            return seconds

    # -- scheduling ----------------------------------------------------------------------------------------
    def _admit(self, request: GenerationRequest, streaming: bool) -> _Pending:
        opts = request.sampling
        max_tokens = check_context(len(request.prompt_token_ids), opts.max_tokens, self.max_context)
        base_seed = opts.seed if opts.seed is not None else secrets.randbits(62)
        track_text = streaming or bool(opts.stop)
        sequences = []
        for index in range(opts.n):
            generator = None
            if opts.temperature > 0:
                generator = torch.Generator(device=self._device).manual_seed(sequence_seed(base_seed, index))
            sequences.append(Sequence(request.prompt_token_ids, index, opts, max_tokens, generator, track_text))
        loop = asyncio.get_running_loop()
        pending = _Pending(request, sequences, loop.create_future(), asyncio.Queue() if streaming else None)
        self._waiting.append(pending)
        self._wakeup.set()
        return pending

    async def _schedule(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._waiting:
                self._wakeup.clear()
                await self._wakeup.wait()
            # A small wait lets requests that arrive together share the batch.
            deadline = loop.time() + self._batch_wait_s
            while self._count_waiting() < self._max_batch and loop.time() < deadline:
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), deadline - loop.time())
                except TimeoutError:
                    break
            batch = self._take_batch()
            if not batch:
                continue
            served = self._served  # the version this batch runs on, to its end
            self._running = batch
            try:
                await self._run_batch(batch, served)
            except Exception as exc:  # a failed batch fails its requests, never the scheduler
                log.exception("batch failed")
                for pending in batch:
                    if not pending.done.done():
                        pending.done.set_exception(exc)
                    if pending.deltas is not None:
                        pending.deltas.put_nowait(exc)

    def _count_waiting(self) -> int:
        return sum(len(p.sequences) for p in self._waiting if not p.done.done())

    def _take_batch(self, room: int | None = None) -> list[_Pending]:
        """Waiting requests, oldest first, up to `room` sequences (max_batch for a new batch)."""
        starting = room is None
        room = self._max_batch if room is None else room
        batch, size = [], 0
        while self._waiting:
            pending = self._waiting[0]
            if pending.done.done():  # cancelled while waiting
                self._waiting.popleft()
                continue
            # A request larger than max_batch starts a batch alone rather than never running.
            if size + len(pending.sequences) > room and not (starting and not batch):
                break
            batch.append(self._waiting.popleft())
            size += len(pending.sequences)
        return batch

    async def _run_batch(self, batch: list[_Pending], served: ServedWeights) -> None:
        loop = asyncio.get_running_loop()
        sequences = [seq for pending in batch for seq in pending.sequences]
        runner = DecodeBatch(
            served.model, sequences, pad_id=self._pad_id(), eos_ids=self._eos_ids, decode=self._decode,
            prefixes=served.prefixes,
        )
        self.batches_run += 1
        await loop.run_in_executor(self._decode_thread, runner.prefill)
        while runner.active:
            for pending in batch:
                if pending.done.cancelled():
                    _abort(pending)
            if self._served is served:
                joiners = self._take_batch(room=self._max_batch - len(runner.active))
                if joiners:
                    batch.extend(joiners)
                    newcomers = [seq for pending in joiners for seq in pending.sequences]
                    await loop.run_in_executor(self._decode_thread, runner.join, newcomers)
                    self.joins += 1
            await loop.run_in_executor(self._decode_thread, runner.step)
            for pending in batch:
                self._publish(pending, served)

    def _publish(self, pending: _Pending, served: ServedWeights) -> None:
        if pending.done.done():
            return
        if pending.deltas is not None:
            for seq in pending.sequences:
                safe = streamable_prefix(seq.text, seq.sampling.stop, seq.finished)
                sent = pending.sent.get(seq.index, "")
                if len(safe) > len(sent) and safe.startswith(sent):
                    pending.deltas.put_nowait(TextDelta(seq.index, safe[len(sent) :]))
                    pending.sent[seq.index] = safe
        if all(seq.finished for seq in pending.sequences):
            result = GenerationResult(
                model=self.model_name,
                model_version=served.version,
                prompt_token_ids=list(pending.request.prompt_token_ids),
                completions=[
                    CompletionOutput(s.index, s.token_ids, s.logprobs, s.finish_reason or "stop", s.text) for s in pending.sequences
                ],
            )
            pending.done.set_result(result)
            if pending.deltas is not None:
                pending.deltas.put_nowait(result)

    def _new_prefix_cache(self) -> PrefixCache:
        return PrefixCache(self._prefix_cache_entries, self.prefix_stats)

    def _pad_id(self) -> int:
        pad = self._tokenizer.pad_token_id
        return pad if pad is not None else next(iter(self._eos_ids))

    def _decode(self, token_ids: list[int]) -> str:
        return self._tokenizer.decode(token_ids, skip_special_tokens=True)


def _abort(pending: _Pending) -> None:
    for seq in pending.sequences:
        seq.aborted = True
    if not pending.done.done():
        pending.done.cancel()


def _eos_ids(model_dir: Path, tokenizer) -> frozenset[int]:
    from transformers import GenerationConfig

    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    try:
        configured = GenerationConfig.from_pretrained(model_dir).eos_token_id
    except OSError:
        configured = None
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(configured)
    return frozenset(ids)

"""Follows lw.prompts into the gateway's PromptPolicies.

No consumer group: every replica reads the whole compacted topic from its start, so each serves every version,
and a restarted gateway has them all again before long. A record that is not a valid policy is dead-lettered with
the reason; serving goes on with the versions it has. Kafka need not be up: the listener keeps reconnecting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer

from lightwire.runtime.dead_letter import decode_or_dead_letter
from lightwire.services.gateway.prompt_policies import InvalidPolicy, PromptPolicies

log = logging.getLogger(__name__)


class PromptListener:
    def __init__(self, policies: PromptPolicies, bootstrap: str, topic: str, dead_letter: Callable[[object, str], None]):
        self.policies = policies
        self.bootstrap = bootstrap
        self.topic = topic
        self.dead_letter = dead_letter
        self.rejected = 0
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="prompt-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _reject(self, record, reason: str) -> None:
        self.rejected += 1
        log.warning("prompt policy dead-lettered", extra={"offset": record.offset, "reason": reason})
        self.dead_letter(record, reason)

    def take(self, records) -> None:
        for record, event in decode_or_dead_letter(records, self._reject, {self.topic: ("prompt_policy",)}):
            try:
                policy = self.policies.add(event.prompt_policy)
            except InvalidPolicy as exc:
                self._reject(record, str(exc))
                continue
            log.info("prompt policy loaded", extra={"task_type": policy.task_type, "version": policy.version, "serving": policy.serving,
                                                    "demonstrations": len(policy.demonstrations)})

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            consumer = AIOKafkaConsumer(self.topic, bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                                        auto_offset_reset="earliest")
            try:
                await consumer.start()
                backoff = 0.5
                while True:
                    for records in (await consumer.getmany(timeout_ms=500)).values():
                        self.take(records)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker went away: read the topic again from its start
                log.warning("prompt listener lost Kafka; retrying", extra={"error": repr(exc)})
            finally:
                try:
                    async with asyncio.timeout(5):
                        await consumer.stop()
                except Exception:
                    pass
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10)

"""The rollout table's state writes, with their changelog records handed straight to Faust's aiokafka producer.

Why not a plain table assignment: it sends its changelog record through Faust's buffered publishing (a future,
serializer look-ups and a log record per write), which costs more than the rest of a rollout's state handling.
This path reaches into Faust (`producer._ensure_producer()`, a private call), so it is kept in one place.
"""

from __future__ import annotations

import asyncio
import logging

from lightwire.runtime.kafka import send_by_partition
from lightwire.services.collector.outputs import Outputs

# Logged under the app's name, as before this module was split out of it: log filters and alerts match on it.
log = logging.getLogger("lightwire.services.collector.app")


class ChangelogWriter:
    def __init__(self, app, table):
        self.app = app
        self.table = table

    async def apply(self, out: Outputs) -> None:
        """`apply_state_writes` for the rollout table, with its changelog records handed straight to Faust's producer.

        The value goes into the table's store and the records, one batch per changelog partition, to the producer's
        accumulator: the same topic, keys, values and partitioning (by key, as the table's use_partitioner), and
        Faust's flush before each offset commit still waits for them. A batch the producer fails to deliver stops the
        worker, so no offset after it is committed. Every write to the rollout table goes this way (deletions too): records
        of one key never take two paths, whose order in the changelog would not be the order they were made in.
        """
        table = self.table
        changes = self._changes(table.data, out)
        producer = self.app.producer._ensure_producer()  # the aiokafka producer under Faust's
        for sent in await send_by_partition(producer, table.changelog_topic.get_topic_name(), changes):
            sent.add_done_callback(self._sent)
        out.state_writes.clear()

    @staticmethod
    def _changes(data, out: Outputs):
        """Applies each state write to the table's store as it is read, yielding the changelog record it needs."""
        for key, value in out.state_writes.items():
            if value is None:
                if key not in data:
                    continue
                del data[key]  # and a tombstone, as a table deletion sends
            else:
                data[key] = value
            yield key, value

    def _sent(self, sent: asyncio.Future) -> None:
        if not sent.cancelled() and sent.exception() is not None:
            log.error("a rollout changelog record was not delivered; stopping the worker", extra={"error": repr(sent.exception())})
            asyncio.ensure_future(self.app.crash(sent.exception()))

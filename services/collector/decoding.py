"""Decoding of every consumer's input: which payload kinds each topic accepts, and decode-or-dead-letter over a batch.

One place decides what a topic may carry, so that every agent dead-letters a stray record with the same reason
instead of failing on it (a record that cannot be processed must not hold its partition).
"""

from __future__ import annotations

from lightwire.runtime.dead_letter import decode_or_dead_letter
from lightwire.v1 import events_pb2
from lightwire.services.collector.outputs import Outputs
from lightwire.services.collector.rollout_state import ROLLOUT_PAYLOADS


class Decoder:
    def __init__(self, names, groups_topic: str):
        self.feedback = names.feedback
        # The payload kinds each input topic carries; a record of any other kind is dead-lettered with the reason.
        self.accepts: dict[str, frozenset[str]] = {
            names.rollout_events: ROLLOUT_PAYLOADS,
            names.feedback: frozenset({"feedback"}),
            names.train_steps: frozenset({"train_step"}),
            names.weights: frozenset({"weight_version"}),
            groups_topic: frozenset({"trajectory"}),
        }

    def decode(self, messages, out: Outputs) -> list[tuple[object, events_pb2.Event]]:
        """Every consumer's decoding: the (message, event) pairs of the messages that decode to a kind their topic
        accepts; the rest go to `out.dead_letters` with the reason. Plain JSON is accepted on the feedback topic only."""
        feedback = self.feedback
        return decode_or_dead_letter(messages, lambda message, reason: out.dead_letters.append((message, reason)), self.accepts,
                                     allow_plain_feedback=lambda message: message.topic == feedback)

"""lw.weights announcements -> engine reloads: only this model's, only newer versions, failures do not stop it."""

from lightwire.runtime import codec
from lightwire.v1 import events_pb2
from lightwire.services.inference.engine import WeightsNotFound
from lightwire.services.inference.weights_listener import WeightsListener


class FakeEngine:
    def __init__(self):
        self.model_version = 1
        self.calls = []

    async def load_weights(self, version, uri, format):
        self.calls.append((version, uri, format))
        if "missing" in uri:
            raise WeightsNotFound(uri)
        self.model_version = version
        return 0.0


def announce(version: int, uri: str = "file:///ckpt", model: str = "m", fmt: str = "lora") -> events_pb2.Event:
    return codec.make_event("trainer", weight_version=events_pb2.WeightVersion(model=model, version=version, uri=uri, format=fmt))


async def test_reloads_newer_versions_of_its_model_only():
    engine = FakeEngine()
    listener = WeightsListener(engine, served_name="m")
    await listener.handle(None, announce(2))
    await listener.handle(None, announce(2))  # re-delivered
    await listener.handle(None, announce(1))  # replayed older
    await listener.handle(None, announce(3, model="other"))
    await listener.handle(None, announce(4, uri="file:///missing"))  # fails, logged
    await listener.handle(None, announce(5, fmt=""))
    assert engine.calls == [(2, "file:///ckpt", "lora"), (4, "file:///missing", "lora"), (5, "file:///ckpt", "full")]
    assert listener.loaded == [2, 5] and engine.model_version == 5


async def test_other_payloads_are_ignored():
    engine = FakeEngine()
    event = codec.make_event("x", feedback=events_pb2.Feedback(rollout_id="r", name="n", value=1.0))
    await WeightsListener(engine, "m").handle(None, event)
    assert engine.calls == []

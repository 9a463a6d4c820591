"""A reward scored by the remote `Reward` service, usable in a pipeline like a local one (with a timeout)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import grpc

from lightwire.v1 import reward_pb2, reward_pb2_grpc


class RemoteReward:
    """Calls Score once per sample; a timeout or an error leaves the sample's reward out (None), never stalls."""

    def __init__(self, name: str, target: str, timeout_s: float = 5.0):
        self.name = name
        self.target = target
        self.timeout_s = timeout_s
        self._channel = grpc.insecure_channel(target)
        self._stub = reward_pb2_grpc.RewardStub(self._channel)

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], **context) -> list[float | None]:
        extra = {k: v for k, v in context.items() if _jsonable(v)}
        out: list[float | None] = []
        for i, (prompt, completion) in enumerate(zip(prompts, completions)):
            # Context is per sample (lists as long as completions): send this sample's slice, still as a list.
            sample = {k: [v[i]] if isinstance(v, list) and len(v) == len(completions) else v for k, v in extra.items()}
            request = reward_pb2.ScoreRequest(reward_name=self.name, prompt=prompt, completion=completion, context_json=json.dumps(sample))
            try:
                response = self._stub.Score(request, timeout=self.timeout_s)
            except grpc.RpcError:
                out.append(None)
                continue
            out.append(response.value if response.applies else None)
        return out


def _jsonable(value) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True

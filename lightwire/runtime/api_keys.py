"""API keys: `Authorization: Bearer <key>` (or the bare key) on HTTP, `authorization` metadata on gRPC. No keys = open.

The gateway, the collector's read API and the dashboard take the same keys (LW_API_KEYS), checked the same way.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable


class ApiKeys:
    def __init__(self, keys: Iterable[str]):
        self.keys = tuple(k.encode() for k in keys)

    @property
    def open(self) -> bool:
        return not self.keys

    def allows(self, authorization: str | None) -> bool:
        if not self.keys:
            return True
        if not authorization:
            return False
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            token = authorization
        candidate = token.strip().encode()
        # Compare with every key (no early exit) so timing says nothing about which key came close.
        return sum(hmac.compare_digest(candidate, k) for k in self.keys) > 0

    def allows_grpc(self, metadata) -> bool:
        if not self.keys:
            return True
        return self.allows(dict(metadata or ()).get("authorization"))


def bearer_header(keys: tuple[str, ...]) -> dict[str, str]:
    """What a client of these APIs sends: the first configured key, or nothing when the APIs are open."""
    return {"Authorization": f"Bearer {keys[0]}"} if keys else {}

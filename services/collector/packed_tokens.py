"""A completion's token ids and logprobs as the analytics keep them: one base64 string each, packed little-endian.

The collector writes one row per call at thousands of calls a second; nested arrays of numbers cost it several
microseconds of CPU per call to serialise, a packed string (built in C by `array` and `base64`) a fraction of one. Only
the read API unpacks them, for the few calls one page shows.
"""

from __future__ import annotations

import base64
import sys
from array import array
from collections.abc import Iterable

_SWAP = sys.byteorder != "little"


def _pack(kind: str, values: Iterable) -> str:
    packed = array(kind, values)
    if _SWAP:
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def _unpack(kind: str, text: str) -> list:
    packed = array(kind)
    packed.frombytes(base64.b64decode(text))
    if _SWAP:
        packed.byteswap()
    return packed.tolist()


def pack_ids(ids: Iterable[int]) -> str:
    return _pack("i", ids)


def pack_logprobs(logprobs: Iterable[float]) -> str:
    return _pack("f", logprobs)


def unpack_call(row: dict) -> dict:
    """A llm_calls row from the store with its packed columns as plain lists (completion_token_ids, ..._logprobs)."""
    out = {k: v for k, v in row.items() if not k.endswith("_packed")}
    out["completion_token_ids"] = [_unpack("i", t) for t in row.get("completion_token_ids_packed") or ()]
    out["completion_logprobs"] = [_unpack("f", t) for t in row.get("completion_logprobs_packed") or ()]
    return out

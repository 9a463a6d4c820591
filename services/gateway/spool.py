"""The gateway's spool: an append-only file of Kafka records, kept while Kafka is unreachable, and the byte offset
up to which they have reached Kafka.

Frame: crc32 (4 bytes), topic length (2), key length (2, 0xFFFF = no key), value length (4), then the bytes. A torn
last frame (a crash mid-write) fails its crc and is dropped with a warning. Every append is fsynced before it
returns: the gateway answers a call only once its event is in Kafka or here.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from pathlib import Path

log = logging.getLogger(__name__)

_HEADER = struct.Struct(">IHHI")
_NO_KEY = 0xFFFF
Record = tuple[str, bytes | None, bytes]


class SpoolFile:
    """An append-only file of records plus the byte offset up to which they reached Kafka."""

    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "events.spool"
        self.offset_path = directory / "events.offset"
        self.size = self.path.stat().st_size if self.path.exists() else 0
        self.offset = int(self.offset_path.read_text() or 0) if self.offset_path.exists() else 0
        if self.offset >= self.size:
            self._reset()

    @property
    def pending(self) -> bool:
        return self.size > self.offset

    def append(self, records: list[Record]) -> None:
        frames = bytearray()
        for topic, key, value in records:
            t = topic.encode()
            k = key or b""
            frames += _HEADER.pack(zlib.crc32(t + k + value), len(t), _NO_KEY if key is None else len(k), len(value)) + t + k + value
        with open(self.path, "ab") as f:
            f.write(frames)
            f.flush()
            os.fsync(f.fileno())
        self.size += len(frames)

    def read(self, max_records: int) -> tuple[list[Record], int]:
        """Up to `max_records` records from the flushed offset on, and the offset after the last one."""
        out: list[Record] = []
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            position = self.offset
            while len(out) < max_records and position < self.size:
                header = f.read(_HEADER.size)
                if len(header) < _HEADER.size:
                    break
                crc, tlen, klen, vlen = _HEADER.unpack(header)
                body = f.read(tlen + (0 if klen == _NO_KEY else klen) + vlen)
                if zlib.crc32(body) != crc:
                    log.warning("dropping a torn record at the end of the spool", extra={"offset": position})
                    return out, self.size
                key = None if klen == _NO_KEY else body[tlen:tlen + klen]
                out.append((body[:tlen].decode(), key, body[len(body) - vlen:]))
                position += _HEADER.size + len(body)
        return out, position

    def commit(self, offset: int) -> None:
        if offset >= self.size:
            self._reset()
            return
        tmp = self.offset_path.with_suffix(".tmp")
        tmp.write_text(str(offset))
        os.replace(tmp, self.offset_path)
        self.offset = offset

    def _reset(self) -> None:
        # Truncate first, then the offset: a crash between the two leaves offset >= size, which loads as empty.
        self.path.write_bytes(b"")
        self.offset_path.write_text("0")
        self.size = self.offset = 0

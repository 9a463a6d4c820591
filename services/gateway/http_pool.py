"""A small keep-alive HTTP/1.1 client for one origin: pooled connections, each an asyncio.Protocol whose replies
httptools (llhttp, the parser uvicorn serves with) parses.

Made for the gateway's upstream call, one request with a whole body and one whole reply per exchange: with it in
place of aiohttp the gateway spends about a third less CPU per call (bench/gateway.py's setup). No streaming,
redirects, cookies, proxies or pipelining. https uses the system's trusted certificates (ssl.create_default_context).
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools


@dataclass(frozen=True, slots=True)
class HttpReply:
    status: int
    body: bytes


class HttpError(Exception):
    """The exchange failed: no connection, a broken reply, or the connection closed before the reply ended."""


class _Dropped(HttpError):
    """Closed before any byte of the reply: on a reused connection, the server closed it while it sat idle."""


class _Connection(asyncio.Protocol):
    """One TCP connection; at most one exchange at a time. Its methods named on_* are httptools' callbacks."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.uses = 0
        self.keep_alive = False
        self._reply: asyncio.Future | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._status = 0
        self._chunks: list[bytes] = []
        self._received = False
        self._framed = False  # the reply says where its body ends (Content-Length or chunked); else it ends at EOF
        self._headers_done = False

    def exchange(self, data: bytes, deadline: float) -> asyncio.Future:
        self.uses += 1
        self._reply = self.loop.create_future()
        self._status, self._chunks, self._received, self._framed, self._headers_done = 0, [], False, False, False
        self.keep_alive = False
        self._timer = self.loop.call_at(deadline, self._expire)
        self.transport.write(data)
        return self._reply

    @property
    def usable(self) -> bool:
        return not self.closed and not self.transport.is_closing()

    def close(self) -> None:
        self.keep_alive = False
        if self._timer is not None:
            self._timer.cancel()
        if self.transport is not None:
            self.transport.close()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(HttpError(f"the reply is not valid HTTP/1.1: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._headers_done and not self._framed:
            self.on_message_complete()  # the body ran until the server closed the connection
        elif not self._received:
            self._fail(_Dropped(f"the connection closed before the reply began ({exc or 'EOF'})"))
        else:
            self._fail(HttpError(f"the connection closed in the middle of the reply ({exc or 'EOF'})"))

    def on_message_begin(self) -> None:
        if self._reply is None or self._reply.done():
            self._fail(HttpError("a reply arrived that nothing asked for"))

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"content-length" or (name == b"transfer-encoding" and b"chunked" in value.lower()):
            self._framed = True

    def on_headers_complete(self) -> None:
        self._status = self.parser.get_status_code()
        self._framed = self._framed or self._status in (204, 304) or self._status < 200
        self._headers_done = True
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        reply, self._reply = self._reply, None
        if self._timer is not None:
            self._timer.cancel()
        self._headers_done = False
        if reply is not None and not reply.done():
            reply.set_result(HttpReply(self._status, b"".join(self._chunks)))
        if not self.keep_alive:
            self.transport.close()

    def _expire(self) -> None:
        self._fail(TimeoutError())

    def _fail(self, exc: Exception) -> None:
        reply, self._reply = self._reply, None
        self.close()
        if reply is not None and not reply.done():
            reply.set_exception(exc)


class ConnectionPool:
    """Keep-alive connections to one origin (scheme://host:port): at most `max_connections` open, idle ones reused
    most recent first, one reused only when its last reply allowed it.

    `timeout_s` bounds a whole exchange (waiting for a connection, connecting, sending, the whole reply) and raises
    TimeoutError; every other failure raises HttpError. A reused connection that closes before any byte of its reply
    is retried once on a fresh one: that is a server closing an idle connection just as the request left.
    """

    def __init__(self, origin: str, *, headers: dict[str, str] | None = None, timeout_s: float = 300.0,
                 connect_timeout_s: float = 5.0, max_connections: int = 512):
        url = urlsplit(origin)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) origin: {origin!r}")
        self.host = url.hostname
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self.ssl = ssl.create_default_context() if url.scheme == "https" else None
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.max_connections = max_connections
        host = self.host if url.port is None else f"{self.host}:{self.port}"
        lines = [f"host: {host}", *(f"{k}: {v}" for k, v in (headers or {}).items())]
        self._head = ("\r\n".join(lines) + "\r\n").encode("latin-1")
        self._idle: list[_Connection] = []
        self._waiters: deque[asyncio.Future] = deque()
        self._open = 0
        self._closed = False

    async def request(self, method: str, path: str, body: bytes | None = None, *, timeout_s: float | None = None) -> HttpReply:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.timeout_s if timeout_s is None else timeout_s)
        length = b"" if body is None else b"content-length: %d\r\n" % len(body)
        data = b"%s %s HTTP/1.1\r\n%s%s\r\n%s" % (method.encode(), path.encode(), self._head, length, body or b"")
        conn = await self._acquire(loop, deadline)
        try:
            return await self._exchange(conn, data, deadline)
        except _Dropped:
            if conn.uses < 2:
                raise
        return await self._exchange(await self._acquire(loop, deadline, fresh=True), data, deadline)

    async def close(self) -> None:
        self._closed = True
        while self._idle:
            self._discard(self._idle.pop())

    async def _exchange(self, conn: _Connection, data: bytes, deadline: float) -> HttpReply:
        try:
            reply = await conn.exchange(data, deadline)
        except BaseException:
            self._discard(conn)
            raise
        self._release(conn) if conn.keep_alive and conn.usable else self._discard(conn)
        return reply

    async def _acquire(self, loop: asyncio.AbstractEventLoop, deadline: float, fresh: bool = False) -> _Connection:
        while self._idle and not fresh:
            conn = self._idle.pop()
            if conn.usable:
                return conn
            self._discard(conn)  # the server closed it while it sat idle
        if self._open < self.max_connections:
            self._open += 1
        elif (conn := await self._wait(deadline)) is not None:
            return conn
        try:
            async with asyncio.timeout_at(min(deadline, loop.time() + self.connect_timeout_s)):
                _, conn = await loop.create_connection(lambda: _Connection(loop), self.host, self.port, ssl=self.ssl)
        except BaseException as exc:
            self._slot_freed()
            if isinstance(exc, OSError):
                raise HttpError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
            raise
        return conn

    async def _wait(self, deadline: float) -> _Connection | None:
        """A connection another exchange released, or None: a slot was freed (and counted as open), connect."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout_at(deadline):
                return await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():  # handed something just as this exchange gave up
                conn = waiter.result()
                self._release(conn) if conn is not None else self._slot_freed()
            else:
                self._waiters.remove(waiter)
            raise

    def _release(self, conn: _Connection) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        if self._closed:
            self._discard(conn)
        else:
            self._idle.append(conn)

    def _discard(self, conn: _Connection) -> None:
        conn.close()
        self._slot_freed()

    def _slot_freed(self) -> None:
        self._open -= 1
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._open += 1  # the waiter opens it
                waiter.set_result(None)
                return

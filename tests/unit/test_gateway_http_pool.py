"""The keep-alive pool against a real asyncio server on loopback that answers with scripted bytes: reuse, framing
(Content-Length, chunked, until EOF), connections the server closes, timeouts and the connection limit."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest

from lightwire.services.gateway.http_pool import ConnectionPool, HttpError

Respond = Callable[[int, int, bytes], "tuple[bytes, bool] | None"]


def answer(body: bytes, *, status: str = "200 OK", close: bool = False, header: str = "") -> tuple[bytes, bool]:
    extra = "connection: close\r\n" if close else ""
    head = f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n{extra}{header}\r\n"
    return head.encode() + body, close


def echo(conn: int, n: int, body: bytes) -> tuple[bytes, bool]:
    return answer(b"%d/%d:%s" % (conn, n, body))


class ScriptedServer:
    """Reads whole requests; `respond(connection index, request index on it, body)` gives the reply bytes and whether
    to close afterwards, or None to close without answering."""

    def __init__(self, respond: Respond, delay_s: float = 0.0):
        self.respond = respond
        self.delay_s = delay_s
        self.connections = 0
        self.open_now = 0
        self.most_open = 0
        self.requests: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn, self.connections = self.connections, self.connections + 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            for n in range(1_000_000):
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                self.requests.append(head)
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0)
                body = await reader.readexactly(length)
                await asyncio.sleep(self.delay_s)
                action = self.respond(conn, n, body)
                if action is None:
                    return
                writer.write(action[0])
                await writer.drain()
                if action[1]:
                    return
        finally:
            self.open_now -= 1
            writer.close()


@contextlib.asynccontextmanager
async def serving(respond: Respond = echo, delay_s: float = 0.0, **pool_options) -> AsyncIterator[tuple[ScriptedServer, ConnectionPool]]:
    server = ScriptedServer(respond, delay_s)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    pool = ConnectionPool(f"http://127.0.0.1:{port}", headers={"content-type": "application/json"}, **pool_options)
    try:
        yield server, pool
    finally:
        await pool.close()
        listener.close()


async def test_keeps_one_connection_alive_across_requests():
    async with serving() as (server, pool):
        replies = [await pool.request("POST", "/v1/x", b'{"i": %d}' % i) for i in range(3)]
        health = await pool.request("GET", "/v1/models")
    assert [r.body for r in replies] == [b'0/0:{"i": 0}', b'0/1:{"i": 1}', b'0/2:{"i": 2}'] and replies[0].status == 200
    assert health.body == b"0/3:" and server.connections == 1
    first = server.requests[0].decode()
    assert first.startswith("POST /v1/x HTTP/1.1\r\n") and "content-length: 8" in first and "content-type: application/json" in first
    assert "host: 127.0.0.1:" in first and "content-length" not in server.requests[3].decode()


async def test_chunked_reply_is_joined_and_the_connection_reused():
    chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    async with serving(lambda conn, n, body: (chunked, False)) as (server, pool):
        replies = [await pool.request("POST", "/", b"{}") for _ in range(2)]
    assert [r.body for r in replies] == [b"hello world"] * 2 and server.connections == 1


async def test_reply_that_says_close_is_not_reused():
    async with serving(lambda conn, n, body: answer(b"ok", close=True)) as (server, pool):
        for _ in range(3):
            assert (await pool.request("POST", "/", b"{}")).body == b"ok"
    assert server.connections == 3


async def test_body_without_length_ends_when_the_server_closes():
    async with serving(lambda conn, n, body: (b"HTTP/1.1 502 Bad Gateway\r\n\r\nupstream gone", True)) as (server, pool):
        reply = await pool.request("POST", "/", b"{}")
        again = await pool.request("POST", "/", b"{}")
    assert (reply.status, reply.body) == (502, b"upstream gone") and again.body == b"upstream gone" and server.connections == 2


async def test_connection_closed_while_idle_is_replaced():
    # The server promises keep-alive, then closes each connection after one reply; the pool notices while idle.
    async with serving(lambda conn, n, body: (answer(b"%d" % conn)[0], True)) as (server, pool):
        first = await pool.request("POST", "/", b"{}")
        await asyncio.sleep(0.05)
        second = await pool.request("POST", "/", b"{}")
    assert (first.body, second.body, server.connections) == (b"0", b"1", 2)


async def test_reused_connection_closed_as_the_request_leaves_is_retried_once():
    # The server reads the second request on connection 0 and closes without a byte: the keep-alive race.
    def respond(conn, n, body):
        return None if (conn, n) == (0, 1) else echo(conn, n, body)

    async with serving(respond) as (server, pool):
        await pool.request("POST", "/", b"a")
        reply = await pool.request("POST", "/", b"b")
    assert reply.body == b"1/0:b" and server.connections == 2


async def test_fresh_connection_closed_without_a_reply_is_an_error_not_a_retry():
    async with serving(lambda conn, n, body: None) as (server, pool):
        with pytest.raises(HttpError, match="before the reply began"):
            await pool.request("POST", "/", b"{}")
    assert server.connections == 1


async def test_reply_cut_short_is_an_error():
    async with serving(lambda conn, n, body: (b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort", True)) as (_, pool):
        with pytest.raises(HttpError, match="middle of the reply"):
            await pool.request("POST", "/", b"{}")


async def test_garbage_reply_is_an_error():
    async with serving(lambda conn, n, body: (b"SMTP ready\r\n\r\n", False)) as (_, pool):
        with pytest.raises(HttpError, match="not valid HTTP"):
            await pool.request("POST", "/", b"{}")


async def test_slow_reply_times_out_and_its_connection_is_dropped():
    async with serving(delay_s=0.5, timeout_s=0.1) as (server, pool):
        with pytest.raises(TimeoutError):
            await pool.request("POST", "/", b"{}")
        assert (await pool.request("POST", "/", b"{}", timeout_s=5)).body == b"1/0:{}"
    assert server.connections == 2


async def test_refused_connection_is_an_error():
    pool = ConnectionPool("http://127.0.0.1:1")
    with pytest.raises(HttpError, match="cannot connect to 127.0.0.1:1"):
        await pool.request("GET", "/")


async def test_concurrent_requests_share_at_most_max_connections():
    async with serving(delay_s=0.02, max_connections=2) as (server, pool):
        replies = await asyncio.gather(*(pool.request("POST", "/", b"%d" % i) for i in range(8)))
    assert sorted(r.body.split(b":")[1] for r in replies) == [b"%d" % i for i in range(8)]
    assert server.connections == 2 and server.most_open == 2


async def test_waiting_for_a_connection_counts_against_the_timeout():
    async with serving(delay_s=0.5, max_connections=1) as (server, pool):
        slow = asyncio.create_task(pool.request("POST", "/", b"{}"))
        await asyncio.sleep(0.05)
        with pytest.raises(TimeoutError):
            await pool.request("POST", "/", b"{}", timeout_s=0.1)
        assert (await slow).body == b"0/0:{}"
        assert (await pool.request("POST", "/", b"{}")).body == b"0/1:{}"
    assert server.connections == 1


def test_only_http_origins():
    with pytest.raises(ValueError, match="not an http"):
        ConnectionPool("ftp://example.com")
    assert ConnectionPool("https://example.com").ssl is not None

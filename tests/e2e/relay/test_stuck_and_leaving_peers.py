"""Transport defects of the reliability issue, through a real `realtime-proxy` process: a client that
leaves during the upstream handshake releases the upstream connection and its slot; `max_sessions`
holds under concurrent handshakes; peers that stop reading are reaped (the stuck side is the one
closed, with the right outcome) and do not hold SIGTERM past the grace period; bare TCP probes and
oversized request heads log no traceback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from websockets.asyncio.client import connect
from websockets.utils import accept_key

from tests.e2e.helpers import EchoUpstream, UpstreamConn, eventually, http_get, proxy_process, raw_upgrade

ARGS = ("--host", "127.0.0.1", "--port", "0", "--metrics-port", "0")


class HangingUpstream:
    """Accepts TCP connections, reads the handshake and never answers; counts what is still open."""

    def __init__(self) -> None:
        self.accepted = 0
        self.open = 0
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"ws://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.open += 1
        try:
            while await reader.read(4096):
                pass
        except ConnectionError:
            pass
        finally:
            self.open -= 1
            writer.close()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[HangingUpstream]:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        try:
            yield self
        finally:
            self.server.close()


def session_lines(lines: list[str], event: str = "session_closed") -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines if f'"{event}"' in line]


async def start_upgrade(port: int) -> asyncio.StreamWriter:
    """Send a WebSocket upgrade request and return without reading the answer."""
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"GET /v1/realtime?model=m HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    await writer.drain()
    return writer


async def test_client_leaving_during_upstream_handshake_releases_upstream_and_slot() -> None:
    env = {"REALTIME_PROXY_MAX_SESSIONS": "5", "REALTIME_PROXY_HANDSHAKE_TIMEOUT": "30"}
    async with (
        HangingUpstream().running() as upstream,
        proxy_process(*ARGS, "--upstream-url", upstream.url, env=env) as running,
        asyncio.timeout(20),
    ):
        leaving = [await start_upgrade(running.port) for _ in range(5)]
        await eventually(lambda: upstream.open == 5)
        for writer in leaving:
            writer.transport.abort()
        await eventually(lambda: upstream.open == 0)  # every upstream connection released
        # The slots are free again: the next handshake reaches the upstream instead of a 503.
        last = await start_upgrade(running.port)
        await eventually(lambda: upstream.accepted == 6)
        last.transport.abort()
        await eventually(lambda: upstream.open == 0)


async def test_max_sessions_holds_under_concurrent_handshakes() -> None:
    env = {"REALTIME_PROXY_MAX_SESSIONS": "5", "REALTIME_PROXY_HANDSHAKE_TIMEOUT": "1"}
    async with (
        HangingUpstream().running() as upstream,
        proxy_process(*ARGS, "--upstream-url", upstream.url, env=env) as running,
        asyncio.timeout(20),
    ):
        target = "/v1/realtime?model=m"
        results = await asyncio.gather(*(raw_upgrade(running.port, target) for _ in range(30)))
    statuses = sorted(status for status, _ in results)
    assert statuses == [503] * 25 + [504] * 5
    # Each of the 5 admitted handshakes timed out 3 times ([handshake_retry] max_attempts), holding its
    # slot throughout: the 25 others were refused at once, none reached the upstream.
    assert upstream.accepted == 15


def streaming(chunk: int = 64 * 1024) -> Any:
    """An upstream behaviour that streams audio deltas to the client until its connection ends."""
    delta = '{"type":"response.output_audio.delta","delta":"' + "A" * chunk + '"}'

    async def stream(conn: UpstreamConn) -> None:
        with contextlib.suppress(Exception):
            while True:
                await conn.ws.send(delta)

    return stream


async def test_half_open_client_is_reaped_and_blamed() -> None:
    env = {"REALTIME_PROXY_PING_INTERVAL": "0.5", "REALTIME_PROXY_PING_TIMEOUT": "0.5"}
    async with (
        EchoUpstream(behaviour=streaming()) as upstream,
        proxy_process(*ARGS, "--upstream-url", upstream.url, env=env) as running,
        asyncio.timeout(20),
    ):
        client = await connect(f"ws://127.0.0.1:{running.port}/v1/realtime", max_size=None, max_queue=1)
        conn = await upstream.next_conn()
        client.transport.pause_reading()  # stops reading, never closes: a half-open peer
        started = time.monotonic()
        await eventually(lambda: bool(session_lines(running.lines)), timeout=10)
        reaped_after = time.monotonic() - started
        await conn.closed.wait()
        client.transport.abort()
    closed = session_lines(running.lines)
    assert [(e["outcome"], e["closed_by"]) for e in closed] == [("client_lost", "client")]
    assert (conn.close_code, conn.close_reason) == (1011, "keepalive ping timeout")
    assert reaped_after < 5, reaped_after


async def test_upstream_that_stops_reading_is_reaped_after_the_client_left() -> None:
    released = asyncio.Event()

    async def accept_then_stop_reading(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        key = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n") if b"-key:" in line.lower())
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept_key(key.decode()).encode() + b"\r\n\r\n"
        )
        writer.transport.pause_reading()
        async with asyncio.timeout(15):
            await released.wait()
        writer.transport.abort()

    async def send_forever(client: Any) -> None:
        with contextlib.suppress(Exception):
            while True:
                await client.send(b"\0" * 65536)

    upstream = await asyncio.start_server(accept_then_stop_reading, "127.0.0.1", 0)
    url = f"ws://127.0.0.1:{upstream.sockets[0].getsockname()[1]}"
    env = {"REALTIME_PROXY_PING_INTERVAL": "0.5", "REALTIME_PROXY_PING_TIMEOUT": "0.5"}
    try:
        async with proxy_process(*ARGS, "--upstream-url", url, env=env) as running, asyncio.timeout(20):
            client = await connect(f"ws://127.0.0.1:{running.port}/v1/realtime")
            sender = asyncio.create_task(send_forever(client))
            # Every buffer up to the upstream is full once the proxy stops taking the client's bytes.
            await eventually(lambda: client.transport.get_write_buffer_size() > 0, timeout=10)
            client.transport.abort()  # the client is gone; the upstream still reads nothing
            await sender
            # The proxy stopped reading the client (backpressure), so only the stuck upstream's missed
            # pong tells: it is the one blamed, and its Close (stuck behind a full buffer) is bounded.
            await eventually(lambda: bool(session_lines(running.lines)), timeout=5)
    finally:
        released.set()
        upstream.close()
    closed = session_lines(running.lines)
    assert [(e["outcome"], e["upstream_close"]["sent"]) for e in closed] == [("upstream_lost", 1011)]


async def test_stuck_session_does_not_hold_sigterm_past_grace() -> None:
    grace = 1.0
    env = {"REALTIME_PROXY_SHUTDOWN_GRACE": str(grace), "REALTIME_PROXY_PING_INTERVAL": "0"}
    async with (
        EchoUpstream(behaviour=streaming()) as upstream,
        proxy_process(*ARGS, "--upstream-url", upstream.url, env=env) as running,
        asyncio.timeout(30),
    ):
        client = await connect(f"ws://127.0.0.1:{running.port}/v1/realtime", max_size=None, max_queue=1)
        conn = await upstream.next_conn()
        client.transport.pause_reading()
        # Every buffer down to the client is full once the proxy stops taking the upstream's bytes.
        await eventually(lambda: conn.ws.transport.get_write_buffer_size() > 0, timeout=10)
        started = time.monotonic()
        running.proc.terminate()
        assert await running.proc.wait() == 0
        took = time.monotonic() - started
        client.transport.abort()
    assert took < grace + 4, took
    assert [e["outcome"] for e in session_lines(running.lines)] == ["shutdown"]


async def test_probes_and_huge_request_lines_log_no_traceback() -> None:
    async with proxy_process(*ARGS, "--log-level", "info") as running, asyncio.timeout(20):
        before = len(running.lines)
        for port in (running.port, running.metrics_port):
            for _ in range(3):  # bare TCP connect/close, as health probes and scanners do
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /" + b"a" * 65536 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            with contextlib.suppress(ConnectionError):
                await writer.drain()
                head = await reader.read(4096)
                assert head.startswith(b"HTTP/1.1 431") or head == b"", head[:40]
            writer.close()
        assert (await http_get(running.metrics_port, "/healthz"))[0] == 200
    new = running.lines[before:]  # everything the process wrote (it is killed, not stopped)
    assert not [line for line in new if "Traceback" in line or '"error"' in line], new
    assert len(new) <= 2, new

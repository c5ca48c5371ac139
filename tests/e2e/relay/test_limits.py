"""Hardening limits through the real proxy: max_sessions -> HTTP 503 JSON at the handshake;
max_frame_bytes -> close 1009 with a reason on the offending leg and the same close on the other leg;
handshake_timeout -> 504; idle_timeout -> 1000 "idle timeout" both sides; max_session_duration -> 1001
both sides; max_client_frames_per_second -> 1008 both sides. Each counted once by outcome."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from realtime_proxy.fake_upstream import FakeUpstream
from tests.conftest import ProxyFactory, RunningProxy
from tests.e2e.helpers import (
    AUTH,
    EchoUpstream,
    closed_with,
    error_body,
    eventually,
    open_session,
    raw_upgrade,
)


async def outcome_count(proxy: RunningProxy, outcome: str) -> float:
    await eventually(lambda: not proxy.server.relays)
    return (await proxy.scrape()).get(f'realtime_proxy_sessions_total{{outcome="{outcome}"}}', 0.0)


async def test_max_sessions_503(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    proxy = await make_proxy(max_sessions=1)
    async with asyncio.timeout(10):
        first = await open_session(proxy)
        with pytest.raises(InvalidStatus) as info:
            await connect(proxy.realtime_url, additional_headers=AUTH)
        response = info.value.response
        assert response.status_code == 503
        assert error_body(response.body or b"")["error"]["code"] == "proxy_at_capacity"
        assert len(fake.connections) == 1  # refused before any upstream connection
        await first.close()
        await eventually(lambda: not proxy.server.relays)
        second = await open_session(proxy)  # capacity is released when a session ends
        await second.close()


async def test_oversized_client_frame_1009(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    proxy = await make_proxy(max_frame_bytes=2048)
    async with asyncio.timeout(10):
        client = await open_session(proxy)
        await client.send('{"type":"input_audio_buffer.append","audio":"' + "A" * 4096 + '"}')
        code, reason = await closed_with(client)
        record = fake.connections[-1]
        await record.wait_closed()
    assert code == 1009 and reason and "limit" in reason
    # The upstream leg is closed with the same code and reason.
    assert (record.close_code, record.close_reason) == (code, reason)
    # websockets *fails* the leg with 1009 (RFC 6455 §7.1.7): counted as a protocol error.
    assert await outcome_count(proxy, "protocol_error") == 1


async def test_oversized_upstream_frame_1009(make_proxy: ProxyFactory) -> None:
    async with EchoUpstream() as upstream:
        proxy = await make_proxy(upstream_url=upstream.url, max_frame_bytes=2048)
        async with asyncio.timeout(10), connect(proxy.realtime_url, max_size=None) as client:
            conn = await upstream.next_conn()
            await conn.ws.send("x" * 4096)
            code, reason = await closed_with(client)
            await conn.closed.wait()
        assert code == 1009 and reason and "limit" in reason
        assert conn.close_code == 1009  # the proxy's upstream leg refused the frame itself
        assert await outcome_count(proxy, "protocol_error") == 1


async def test_handshake_timeout_504(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    proxy = await make_proxy(handshake_timeout=0.2)
    fake.handshake_delay = 0.6
    status, body = await raw_upgrade(proxy.port, "/v1/realtime?model=gpt-realtime")
    assert status == 504 and error_body(body)["error"]["type"] == "server_error"


async def test_idle_timeout_1000_both_sides(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    proxy = await make_proxy(idle_timeout=0.4)
    async with asyncio.timeout(10):
        client = await open_session(proxy)
        # Activity keeps the session alive past the timeout.
        for _ in range(4):
            await client.send('{"type":"input_audio_buffer.clear"}')
            assert json.loads(await client.recv())["type"] == "input_audio_buffer.cleared"
            await asyncio.sleep(0.15)
        assert await closed_with(client) == (1000, "idle timeout")
        record = fake.connections[-1]
        await record.wait_closed()
    assert (record.close_code, record.close_reason) == (1000, "idle timeout")
    assert await outcome_count(proxy, "idle_timeout") == 1


async def test_max_session_duration_1001_both_sides(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    proxy = await make_proxy(max_session_duration=0.3)
    async with asyncio.timeout(10):
        client = await open_session(proxy)
        assert await closed_with(client) == (1001, "session duration limit reached")
        record = fake.connections[-1]
        await record.wait_closed()
    assert (record.close_code, record.close_reason) == (1001, "session duration limit reached")
    assert await outcome_count(proxy, "max_duration") == 1


async def test_client_frame_rate_1008_both_sides(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    proxy = await make_proxy(max_client_frames_per_second=20)
    async with asyncio.timeout(10):
        client = await open_session(proxy)
        with contextlib.suppress(ConnectionClosed):  # the close may land before or after the last send
            for _ in range(100):
                await client.send('{"type":"input_audio_buffer.clear"}')
        assert await closed_with(client) == (1008, "client frame rate limit exceeded")
        record = fake.connections[-1]
        await record.wait_closed()
    assert (record.close_code, record.close_reason) == (1008, "client frame rate limit exceeded")
    assert len([f for f in record.received if isinstance(f, str)]) <= 20  # frames over the limit dropped
    assert await outcome_count(proxy, "rate_limited") == 1

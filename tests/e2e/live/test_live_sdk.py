"""The official SDK's Live client (`client.live.connect()`, `client.live.sessions.*`) through the
proxy, to the fake Live API (issue 22): relayed untouched, back-to-back creates all answered."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest
from openai import AsyncOpenAI

from realtime_proxy.fake_upstream import FakeUpstream
from tests.conftest import API_KEY, ProxyFactory, RunningProxy, sample
from tests.e2e.helpers import http_get, proxy_process

DELEGATION = {"type": "responses", "responses": {"model": "gpt-5.2"}}


async def until(connection: Any, wanted: str, count: int = 1) -> list[Any]:
    """Events up to and including the `count`-th of type `wanted`."""
    events: list[Any] = []
    seen = 0
    async with asyncio.timeout(5):
        async for event in connection:
            events.append(event)
            if event.type == wanted:
                seen += 1
                if seen == count:
                    return events
    raise AssertionError(f"connection ended before {count} x {wanted}: {[e.type for e in events]}")


@pytest.mark.parametrize("via", ["websocket_base_url", "base_url"])
async def test_sdk_live_connect_back_to_back_creates_all_answered(proxy: RunningProxy, via: str) -> None:
    """Live sends no response.done: a Realtime-style hold of the second create would stall it."""
    base = {via: proxy.ws_base if via == "websocket_base_url" else proxy.base_url}
    client = AsyncOpenAI(api_key=API_KEY, **base)  # type: ignore[arg-type]
    async with client.live.connect() as connection:
        await connection.session.start(
            session={"model": "gpt-live-1", "delegation": DELEGATION}, event_id="start_1"
        )
        started = await until(connection, "session.started")
        assert started[-1].session.model == "gpt-live-1"
        assert started[-1].client_event_id == "start_1"
        for n in range(3):
            await connection.response.create(event_id=f"create_{n}")
        events = await until(connection, "session.output_audio.delta", count=3)
        await connection.session.close()
        await until(connection, "session.closed")
    delegations = [e.delegation.id for e in events if e.type == "session.delegation.created"]
    assert len(delegations) == 3 and len(set(delegations)) == 3
    completed = [e for e in events if e.type == "response.event" and e.event["type"] == "response.completed"]
    assert [e.delegation_id for e in completed] == delegations
    record = proxy.fake.connections[-1]
    assert record.path == "/v1/live/sessions"
    assert record.headers["authorization"] == f"Bearer {API_KEY}"


async def test_every_live_frame_arrives_upstream_byte_for_byte(proxy: RunningProxy) -> None:
    """Even frames a Realtime rule would rewrite (a null tool_choice) go on as sent on Live."""
    client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=proxy.ws_base)
    sent: list[str] = [
        '{"type":"session.start","event_id":"s1","session":{"model":"gpt-live-1.1","delegation":'
        '{"type":"responses","responses":{"model":"gpt-5.2","tool_choice":null}}}}',
        '{"type": "session.instructions.append", "text": "Be brief.", "event_id": "i1"}',
        '{"type":"response.create"}',
        '{"type":"response.create" , "event_id":"c2"}',
        '{"type":"session.input_audio.append","audio":"AAAA"}',
    ]
    async with client.live.connect() as connection:
        await connection.send_raw(sent[0])  # type: ignore[attr-defined]
        await until(connection, "session.started")
        for frame in sent[1:]:
            await connection.send_raw(frame)  # type: ignore[attr-defined]
        await until(connection, "session.output_audio.delta", count=2)
    assert proxy.fake.connections[-1].received == sent
    # The server's frames reached the client unchanged too.
    assert all(isinstance(frame, str) for frame in proxy.fake.connections[-1].sent)


async def test_live_http_routes_work_with_one_base_url(proxy: RunningProxy) -> None:
    async with AsyncOpenAI(api_key=API_KEY, base_url=proxy.base_url, max_retries=0, timeout=10) as client:
        await _http_routes(client, proxy)


async def _http_routes(client: AsyncOpenAI, proxy: RunningProxy) -> None:
    created = await client.live.create(
        session={"model": "gpt-live-1"}, transport={"type": "webrtc", "sdp": "v=0\r\n"}
    )
    assert created.session.id.startswith("live_sess")
    session_id = created.session.id
    forked = await client.live.sessions.fork(session_id, transport={"type": "webrtc", "sdp": "v=0\r\n"})
    assert forked.session.id != session_id and forked.transport.sdp.startswith("v=0")
    await client.live.sessions.accept(session_id, session={"model": "gpt-live-1"})
    await client.live.sessions.refer(session_id, target_uri="tel:+14155550123")
    await client.live.sessions.reject(session_id, status_code=486)
    await client.live.sessions.hangup(session_id)
    recording = await client.live.sessions.download_recording(session_id)
    assert len(recording.content) == 1024
    paths = [(r.method, r.path) for r in proxy.fake.http.records]
    assert paths == [
        ("POST", "/v1/live/sessions"),
        ("POST", f"/v1/live/sessions/{session_id}/fork"),
        ("POST", f"/v1/live/sessions/{session_id}/accept"),
        ("POST", f"/v1/live/sessions/{session_id}/refer"),
        ("POST", f"/v1/live/sessions/{session_id}/reject"),
        ("POST", f"/v1/live/sessions/{session_id}/hangup"),
        ("GET", f"/v1/live/sessions/{session_id}/content"),
    ]
    samples = await proxy.scrape()
    assert sample(samples, "realtime_proxy_http_requests_total", route="live_sessions", status="2xx") == 1
    assert (
        sample(samples, "realtime_proxy_http_requests_total", route="live_session_action", status="2xx") == 6
    )


async def test_sdk_live_connect_through_the_proxy_process(fake: FakeUpstream) -> None:
    """The installed CLI in its own process, in front of the fake: the SDK's Live client works."""
    args = ("--upstream-url", fake.url, "--host", "127.0.0.1", "--port", "0", "--metrics-port", "0")
    async with proxy_process(*args) as running:
        client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=f"ws://127.0.0.1:{running.port}/v1")
        async with client.live.connect() as connection:
            await connection.session.start(session={"model": "gpt-live-1", "delegation": DELEGATION})
            await until(connection, "session.started")
            await connection.response.create()
            await connection.response.create()
            events = await until(connection, "session.output_audio.delta", count=2)
        assert sum(e.type == "session.delegation.created" for e in events) == 2
        status, body = await http_get(running.metrics_port, "/metrics")
        assert status == 200 and b'realtime_proxy_sessions_opened_total{route="live"} 1.0' in body
        assert await running.stop() == 0


async def test_live_is_allowed_in_inject_mode(
    make_proxy: ProxyFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inject mode: the SDK presents a proxy token on the Live socket and HTTP routes; the real key
    goes upstream only there (auth.inject_paths / http.inject_routes have Live entries)."""
    token, real_key = "proxy-token-LIVE-42", "sk-real-LIVEKEY-987654"
    monkeypatch.setenv("OPENAI_API_KEY", real_key)
    proxy = await make_proxy(
        auth={"mode": "inject", "token_sha256": [hashlib.sha256(token.encode()).hexdigest()]}
    )
    async with AsyncOpenAI(api_key=token, base_url=proxy.base_url, max_retries=0, timeout=10) as client:
        async with client.live.connect() as connection:
            await connection.session.start(session={"model": "gpt-live-1"})
            await until(connection, "session.started")
        created = await client.live.create(
            session={"model": "gpt-live-1"}, transport={"type": "webrtc", "sdp": "v=0"}
        )
        await client.live.sessions.hangup(created.session.id)
    assert proxy.fake.connections[-1].headers["authorization"] == f"Bearer {real_key}"
    assert [r.headers["authorization"] for r in proxy.fake.http.records] == [f"Bearer {real_key}"] * 2
    assert token not in proxy.logs.getvalue() and real_key not in proxy.logs.getvalue()


async def test_sdk_sideband_and_fork_sockets_through_the_proxy(
    make_proxy: ProxyFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`client.live.sideband.connect()` (`/live/sessions/{id}/attach`: the server speaks first) and
    `client.live.forks.connect()` (`/{id}/fork`: session.start, the model inherited), in inject mode:
    the Live session's inject path admits its sub-sockets."""
    token, real_key = "proxy-token-LIVE-43", "sk-real-LIVEKEY-123456"
    monkeypatch.setenv("OPENAI_API_KEY", real_key)
    proxy = await make_proxy(
        auth={"mode": "inject", "token_sha256": [hashlib.sha256(token.encode()).hexdigest()]}
    )
    client = AsyncOpenAI(api_key=token, websocket_base_url=proxy.ws_base)
    async with client.live.sideband.connect(session_id="live_sess_1") as sideband:
        started = await until(sideband, "session.started")
        await sideband.send({"type": "transport.dtmf.send", "event": "5", "event_id": "d1"})
        await sideband.response.create()
        events = await until(sideband, "session.output_audio.delta")
    assert started[-1].session.model == "gpt-live-1"
    sent = [e for e in events if e.type == "transport.dtmf.sent"]
    assert len(sent) == 1 and sent[0].client_event_id == "d1"
    async with client.live.forks.connect(session_id="live_sess_1") as fork:
        await fork.send({"type": "session.start", "session": {}})
        started = await until(fork, "session.started")
    assert started[-1].session.model == "gpt-live-1"
    paths = [c.path for c in proxy.fake.connections]
    assert paths == ["/v1/live/sessions/live_sess_1/attach", "/v1/live/sessions/live_sess_1/fork"]
    assert all(c.headers["authorization"] == f"Bearer {real_key}" for c in proxy.fake.connections)
    samples = await proxy.scrape()
    assert sample(samples, "realtime_proxy_sessions_opened_total", route="live") == 2

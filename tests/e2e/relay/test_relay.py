"""Relay core, through the real proxy with raw websockets clients: path/query reach the configured
upstream and nothing the client sends can change its host (400 instead); the header allow-list;
subprotocols forwarded and the upstream's choice echoed; refused/unreachable/hung upstream handshakes
relayed as HTTP status + JSON body; frames in order and byte for byte (text, binary, 10 MiB, malformed
JSON); close codes and reasons mirrored both ways; end-to-end backpressure with bounded proxy memory."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from realtime_proxy.fake_upstream import FakeUpstream
from tests.conftest import ProxyFactory
from tests.e2e.helpers import SECRET, EchoUpstream, error_body, eventually, proxy_process, raw_upgrade


@pytest.fixture
async def echo() -> EchoUpstream:
    async with EchoUpstream() as upstream:
        yield upstream


# -- 1. path and query; the host is fixed ------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "upstream"),
    [
        ("/v1/realtime?model=gpt-realtime", None),
        ("/v1/realtime?call_id=rtc_x", None),
        ("/openai/v1/realtime?model=dep", None),
        ("/v1/realtime/translations?model=gpt-realtime-translate", None),
        # transcription_handshake_model: the model moves into the session (livekit/agents-js #1756)
        ("/v1/realtime?intent=transcription&model=gpt-realtime", "/v1/realtime?intent=transcription"),
    ],
)
async def test_path_and_query_reach_upstream_verbatim(
    make_proxy: ProxyFactory, echo: EchoUpstream, target: str, upstream: str | None
) -> None:
    proxy = await make_proxy(upstream_url=echo.url)
    async with asyncio.timeout(10), connect(f"ws://127.0.0.1:{proxy.port}{target}") as client:
        conn = await echo.next_conn()
        assert conn.path == (upstream or target)
        await client.send("ping")
        assert await client.recv() == "ping"


@pytest.mark.parametrize(
    "target",
    [
        "http://evil.example/v1/realtime",
        "ws://evil.example/v1/realtime",
        "//evil.example/v1/realtime",
        "\\\\evil.example/v1/realtime",
        "/\\evil.example/v1/realtime",
        "/v1\\realtime",
        "evil.example/v1/realtime",
        "/v1/realtime\udcff",  # a raw 0xff byte in the request line
        "*",
    ],
)
async def test_odd_request_targets_get_400_and_no_upstream(
    make_proxy: ProxyFactory, echo: EchoUpstream, target: str
) -> None:
    proxy = await make_proxy(upstream_url=echo.url)
    status, body = await raw_upgrade(proxy.port, target)
    assert status == 400
    assert error_body(body)["error"]["code"] == "invalid_request_target"
    assert echo.conns == []


async def test_host_header_cannot_redirect_upstream(make_proxy: ProxyFactory, echo: EchoUpstream) -> None:
    proxy = await make_proxy(upstream_url=echo.url)
    headers = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}
    status, _ = await raw_upgrade(proxy.port, "/v1/realtime?model=m", headers)
    assert status == 101
    conn = await echo.next_conn()
    # The upstream got the connection, with its own Host (websockets sets it from the configured URL).
    assert conn.headers["host"] == echo.url.removeprefix("ws://")
    assert conn.path == "/v1/realtime?model=m"


# -- 2. headers --------------------------------------------------------------------------------


async def test_header_allow_list(make_proxy: ProxyFactory, echo: EchoUpstream) -> None:
    proxy = await make_proxy(upstream_url=echo.url)
    sent = {
        "Authorization": f"Bearer {SECRET}",
        "api-key": "azure-key",
        "OpenAI-Organization": "org_1",
        "OpenAI-Project": "proj_1",
        "User-Agent": "OpenAI/Python 9.9",
        "X-Request-Tag": "abc",
        "Cookie": "session=1",
        "Origin": "https://app.example",
        "Proxy-Authorization": "Basic Zm9vOmJhcg==",
        "TE": "trailers",
        "Keep-Alive": "timeout=5",
        "Forwarded": "for=1.2.3.4",
        "Via": "1.1 other",
        "X-Hop": "listed-in-connection",
    }
    status, _ = await raw_upgrade(proxy.port, "/v1/realtime", {**sent, "Connection": "Upgrade, X-Hop"})
    assert status == 101
    got = (await echo.next_conn()).headers
    for name in (
        "authorization",
        "api-key",
        "openai-organization",
        "openai-project",
        "user-agent",
        "x-request-tag",
    ):
        assert got[name] == sent[next(k for k in sent if k.lower() == name)]
    for name in ("cookie", "origin", "proxy-authorization", "te", "keep-alive", "forwarded", "via", "x-hop"):
        assert name not in got, name
    assert got["connection"].lower() == "upgrade"


# -- 3. subprotocols ---------------------------------------------------------------------------


async def test_subprotocols_forwarded_and_choice_echoed(make_proxy: ProxyFactory, echo: EchoUpstream) -> None:
    proxy = await make_proxy(upstream_url=echo.url)
    offered = ["realtime", f"openai-insecure-api-key.{SECRET}", "openai-organization.org_1"]
    async with asyncio.timeout(10), connect(proxy.realtime_url, subprotocols=offered) as client:  # type: ignore[arg-type]
        conn = await echo.next_conn()
        assert conn.subprotocols == offered
        assert client.subprotocol == "realtime"


async def test_no_subprotocol_when_upstream_selects_none(
    make_proxy: ProxyFactory, echo: EchoUpstream
) -> None:
    proxy = await make_proxy(upstream_url=echo.url)
    async with asyncio.timeout(10), connect(proxy.realtime_url, subprotocols=["other"]) as client:  # type: ignore[list-item]
        assert (await echo.next_conn()).subprotocols == ["other"]
        assert client.subprotocol is None


# -- 4. refused / unreachable / hung upstream handshakes ---------------------------------------


@pytest.mark.parametrize("status", [401, 403, 404, 429, 500])
async def test_upstream_refusal_relayed(make_proxy: ProxyFactory, fake: FakeUpstream, status: int) -> None:
    proxy = await make_proxy()
    body = {"error": {"type": "invalid_request_error", "code": f"c{status}", "message": "no", "param": None}}
    fake.refuse_handshake = (status, body)
    with pytest.raises(InvalidStatus) as info:
        async with asyncio.timeout(10):
            await connect(proxy.realtime_url, additional_headers={"Authorization": f"Bearer {SECRET}"})
    response = info.value.response
    assert response.status_code == status
    assert json.loads(response.body or b"") == body
    assert response.headers["Content-Type"] == "application/json"
    assert not proxy.server.relays


async def test_unreachable_upstream_502(make_proxy: ProxyFactory) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proxy = await make_proxy(upstream_url=f"ws://127.0.0.1:{port}")
    status, body = await raw_upgrade(proxy.port, "/v1/realtime?model=m")
    assert status == 502
    assert error_body(body)["error"]["code"] == "upstream_unreachable"


async def test_handshake_hang_504(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    proxy = await make_proxy(handshake_timeout=0.2)
    fake.handshake_delay = 0.8
    status, body = await raw_upgrade(proxy.port, "/v1/realtime?model=m")
    assert status == 504
    assert error_body(body)["error"]["code"] == "upstream_timeout"


# -- 5. frames ---------------------------------------------------------------------------------


def _frame(i: int) -> str | bytes:
    if i % 7 == 0:
        return i.to_bytes(4, "big") + bytes(range(256))[: i % 256]
    if i % 5 == 0:
        return f'{{"type":"input_audio_buffer.append","audio":"{"A" * (i % 300)}","n":{i}}}'
    return f"plain text frame {i} ünïcödé {'x' * (i % 50)}"


async def test_ten_thousand_frames_each_way_in_order(make_proxy: ProxyFactory, echo: EchoUpstream) -> None:
    proxy = await make_proxy(upstream_url=echo.url)
    frames = [_frame(i) for i in range(10_000)]
    async with asyncio.timeout(30), connect(proxy.realtime_url, max_size=None) as client:

        async def send_all() -> None:
            for frame in frames:
                await client.send(frame)

        sender = asyncio.create_task(send_all())
        got = [await client.recv() for _ in frames]
        await sender
    assert got == frames  # echoed upstream->client: same order, same types, same bytes
    conn = echo.conns[0]
    await asyncio.wait_for(conn.closed.wait(), 5)
    assert conn.received == frames  # client->upstream


async def test_large_binary_and_malformed_frames(make_proxy: ProxyFactory, echo: EchoUpstream) -> None:
    proxy = await make_proxy(upstream_url=echo.url)
    big = '{"type":"input_audio_buffer.append","audio":"' + "QUJD" * (10 * 1024 * 1024 // 4) + '"}'
    cases: list[str | bytes] = [
        big,
        bytes(range(256)) * 4096,
        '{"type":"response.create",',
        "[1,2,3]",
        '{"type": "session.update"  , "session": 5}',
        "",
        b"",
    ]
    async with asyncio.timeout(30), connect(proxy.realtime_url, max_size=None) as client:
        for frame in cases:
            await client.send(frame)
            echoed = await client.recv()
            assert type(echoed) is type(frame)
            assert echoed == frame
    conn = echo.conns[0]
    await asyncio.wait_for(conn.closed.wait(), 5)
    assert conn.received == cases


# -- 6. close mirroring ------------------------------------------------------------------------


async def test_client_close_code_reaches_upstream(make_proxy: ProxyFactory, echo: EchoUpstream) -> None:
    proxy = await make_proxy(upstream_url=echo.url)
    async with asyncio.timeout(10):
        client = await connect(proxy.realtime_url)
        conn = await echo.next_conn()
        await client.close(4001, "bye")
        await conn.closed.wait()
    assert (conn.close_code, conn.close_reason) == (4001, "bye")
    await eventually(lambda: not proxy.server.relays)


@pytest.mark.parametrize(
    ("code", "reason"), [(1011, "boom"), (4000, "beta_api_shape_disabled"), (1001, "away")]
)
async def test_upstream_close_code_reaches_client(
    make_proxy: ProxyFactory, echo: EchoUpstream, code: int, reason: str
) -> None:
    proxy = await make_proxy(upstream_url=echo.url)
    async with asyncio.timeout(10), connect(proxy.realtime_url) as client:
        conn = await echo.next_conn()
        await conn.ws.close(code, reason)
        with pytest.raises(ConnectionClosed):
            await client.recv()
        assert (client.close_code, client.close_reason) == (code, reason)


async def test_upstream_codeless_close_stays_codeless(make_proxy: ProxyFactory, echo: EchoUpstream) -> None:
    """Issue 25: an empty Close (1005) used to become 1000, which the SDKs do not reconnect on."""
    proxy = await make_proxy(upstream_url=echo.url)
    async with asyncio.timeout(10), connect(proxy.realtime_url) as client:
        conn = await echo.next_conn()
        await conn.ws.close(None)  # type: ignore[arg-type]  # an empty Close frame
        with pytest.raises(ConnectionClosed):
            await client.recv()
        assert client.protocol.close_rcvd is not None
        assert (client.close_code, client.protocol.close_rcvd.code) == (1005, 1005)


async def test_upstream_tcp_drop_gives_1011(make_proxy: ProxyFactory, echo: EchoUpstream) -> None:
    proxy = await make_proxy(upstream_url=echo.url)
    async with asyncio.timeout(10), connect(proxy.realtime_url) as client:
        conn = await echo.next_conn()
        conn.ws.transport.abort()
        with pytest.raises(ConnectionClosed):
            await client.recv()
        assert (client.close_code, client.close_reason) == (1011, "upstream connection lost")


async def test_client_vanishing_gives_upstream_1001(make_proxy: ProxyFactory, echo: EchoUpstream) -> None:
    proxy = await make_proxy(upstream_url=echo.url)
    async with asyncio.timeout(10):
        client = await connect(proxy.realtime_url)
        conn = await echo.next_conn()
        client.transport.abort()
        await conn.closed.wait()
    assert (conn.close_code, conn.close_reason) == (1001, "client connection lost")


# -- 7. flow control ---------------------------------------------------------------------------

CHUNK = 64 * 1024
TOTAL = 100 * 1024 * 1024


async def test_slow_client_bounds_proxy_memory_and_blocks_upstream() -> None:
    sent = {"bytes": 0}
    delta = '{"type":"response.output_audio.delta","delta":"' + "A" * CHUNK + '"}'

    async def stream(conn: object) -> None:
        ws = conn.ws  # type: ignore[attr-defined]
        while sent["bytes"] < TOTAL:
            await ws.send(delta)
            sent["bytes"] += len(delta)
        await ws.wait_closed()

    async with (
        EchoUpstream(behaviour=stream) as upstream,
        proxy_process(
            "--host", "127.0.0.1", "--port", "0", "--metrics-port", "0", "--upstream-url", upstream.url
        ) as running,
        asyncio.timeout(40),
    ):
        baseline = running.rss_kib()
        # A client that reads nothing: small receive queue, so its own buffers stay small too.
        client = await connect(f"ws://127.0.0.1:{running.port}/v1/realtime", max_queue=1, max_size=None)
        # The upstream's sends stall once the proxy stops reading (no progress for 0.5 s).
        last = -1
        while sent["bytes"] != last:
            last = sent["bytes"]
            await asyncio.sleep(0.5)
        stalled = sent["bytes"]
        growth_mib = (running.rss_kib() - baseline) / 1024
        print(
            f"flow control: upstream stalled after {stalled / 2**20:.1f} MiB, proxy RSS +{growth_mib:.1f} MiB"
        )
        assert stalled < TOTAL / 4, f"upstream wrote {stalled} bytes to a non-reading client"
        assert growth_mib < 30, growth_mib
        # Once the client reads, the full volume flows, in order and without loss.
        received = 0
        while received < TOTAL:
            frame = await client.recv()
            assert frame == delta
            received += len(frame)
        assert running.rss_kib() - baseline < 30 * 1024
        await client.close()


async def test_permessage_deflate_when_enabled(make_proxy: ProxyFactory, echo: EchoUpstream) -> None:
    proxy = await make_proxy(upstream_url=echo.url, compression=True)
    async with asyncio.timeout(10), connect(proxy.realtime_url, compression="deflate") as client:
        assert [e.name for e in client.protocol.extensions] == ["permessage-deflate"]
        for frame in ["x" * 5000, b"\0" * 5000, "ünïcödé"]:
            await client.send(frame)
            assert await client.recv() == frame
    conn = echo.conns[0]
    await asyncio.wait_for(conn.closed.wait(), 5)
    assert conn.received == ["x" * 5000, b"\0" * 5000, "ünïcödé"]

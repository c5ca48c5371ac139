"""upstream: the URL is the configured base + the client's origin-form path/query and nothing the
client sends can change the host; the forwarded header allow-list; subprotocol parsing; handshake
failures map to UpstreamRefused/Unreachable/Timeout."""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.datastructures import Headers

from realtime_proxy.edge.upstream import (
    BadRequestTarget,
    UpstreamOptions,
    UpstreamRefused,
    UpstreamTimeout,
    UpstreamUnreachable,
    forwarded_headers,
    offered_subprotocols,
    upstream_url,
)
from realtime_proxy.edge.upstream_leg import open_upstream

BASE = "wss://api.openai.com"


@pytest.mark.parametrize(
    ("base", "target", "url"),
    [
        (BASE, "/v1/realtime?model=gpt-realtime", "wss://api.openai.com/v1/realtime?model=gpt-realtime"),
        (BASE + "/", "/v1/realtime?call_id=rtc_x", "wss://api.openai.com/v1/realtime?call_id=rtc_x"),
        ("wss://r.openai.azure.com", "/openai/v1/realtime?model=dep", "wss://r.openai.azure.com/openai/v1/realtime?model=dep"),
        (BASE, "/v1/realtime?x=@evil.example", "wss://api.openai.com/v1/realtime?x=@evil.example"),
        (BASE, "/@evil.example", "wss://api.openai.com/@evil.example"),
    ],
)  # fmt: skip
def test_upstream_url(base: str, target: str, url: str) -> None:
    assert upstream_url(base, target) == url


@pytest.mark.parametrize(
    "target",
    [
        "http://evil.example/v1",
        "//evil.example/v1",
        "\\\\evil.example",
        "/\\evil.example",
        "evil.example",
        "",
        "*",
        "/v1 realtime",
        "/v1\trealtime",
        "/v1\x00",
        "/v1\x7f",
        "/v1/\udcff",
        "/v1/é",
    ],
)
def test_odd_targets_refused(target: str) -> None:
    with pytest.raises(BadRequestTarget):
        upstream_url(BASE, target)


@given(st.text(max_size=60))
def test_host_never_changes(target: str) -> None:
    try:
        url = upstream_url(BASE, target)
    except BadRequestTarget:
        return
    assert urlsplit(url).netloc == "api.openai.com"
    assert url == BASE + target


def test_forwarded_headers_allow_list() -> None:
    headers = Headers(
        [
            ("Host", "proxy"),
            ("Authorization", "Bearer k"),
            ("api-key", "a"),
            ("OpenAI-Organization", "o"),
            ("OpenAI-Project", "p"),
            ("OpenAI-Beta", "realtime=v1"),
            ("User-Agent", "ua"),
            ("X-Trace", "t"),
            ("X-Hop", "h"),
            ("Connection", "Upgrade, X-Hop"),
            ("Upgrade", "websocket"),
            ("Cookie", "c"),
            ("Origin", "https://o"),
            ("Proxy-Authorization", "Basic x"),
            ("TE", "trailers"),
            ("Sec-WebSocket-Key", "k"),
            ("Sec-WebSocket-Protocol", "realtime"),
        ]
    )
    assert [name for name, _ in forwarded_headers(headers)] == [
        "Authorization",
        "api-key",
        "OpenAI-Organization",
        "OpenAI-Project",
        "OpenAI-Beta",
        "User-Agent",
        "X-Trace",
    ]


def test_offered_subprotocols() -> None:
    headers = Headers(
        [
            ("Sec-WebSocket-Protocol", "realtime, openai-insecure-api-key.k"),
            ("Sec-WebSocket-Protocol", " x ,"),
        ]
    )
    assert offered_subprotocols(headers) == ["realtime", "openai-insecure-api-key.k", "x"]


OPTIONS = UpstreamOptions(
    max_size=2**20,
    open_timeout=0.3,
    ping_interval=None,
    ping_timeout=None,
    compression=False,
    ssl_context=None,
)


async def test_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(UpstreamUnreachable) as info:
        async with asyncio.timeout(5):
            await open_upstream(f"ws://127.0.0.1:{port}/v1/realtime", [], [], OPTIONS)
    assert info.value.status == 502


async def test_timeout_and_refusal() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never answers the handshake
        writer.close()

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = b'{"error":{"code":"rate_limit_exceeded"}}'
        writer.write(
            b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nRetry-After: 3\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()
        writer.close()

    async def redirect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 302 Found\r\nLocation: ws://evil.example/\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    async with asyncio.timeout(10):
        for handler, expected in (
            (silent, UpstreamTimeout),
            (refuse, UpstreamRefused),
            (redirect, UpstreamRefused),
        ):
            server = await asyncio.start_server(handler, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            with pytest.raises(expected) as info:
                await open_upstream(f"ws://127.0.0.1:{port}/v1/realtime", [], [], OPTIONS)
            server.close()
            await server.wait_closed()
            if handler is refuse:
                assert info.value.status == 429 and info.value.headers["Retry-After"] == "3"  # type: ignore[attr-defined]
                assert info.value.body == b'{"error":{"code":"rate_limit_exceeded"}}'  # type: ignore[attr-defined]
            if handler is redirect:
                assert info.value.status == 302  # never followed


def test_parsed_upstream_urls_are_shared_unless_their_query_may_hold_a_credential() -> None:
    from realtime_proxy.edge import upstream_leg

    plain = "wss://api.example/v1/realtime?model=gpt-realtime"
    assert upstream_leg._parsed(plain) is upstream_leg._parsed(plain)
    for secret in ("?api-key=s3cret", "?model=m&Token=t", "?authorization=x"):
        url = "wss://api.example/openai/realtime" + secret
        assert upstream_leg._parsed(url).resource_name.endswith(secret)
        assert url not in upstream_leg._URIS

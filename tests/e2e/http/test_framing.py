"""HTTP framing by the book (RFC 9112 §6), through the in-process proxy and the fake: a request
whose length can be read two ways, a folded or control-character head, a bad chunk size get a 400
with a fixed body, the connection is closed and nothing after them is forwarded; every parser
refusal has a fixed text that never quotes the request (an Authorization value included)."""

from __future__ import annotations

import asyncio
import re

import orjson
import pytest

from tests.conftest import API_KEY, ProxyFactory, RunningProxy
from tests.e2e.helpers import raw_upgrade

SMUGGLED = b"GET /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + API_KEY.encode() + b"\r\n\r\n"
TE = b"Transfer-Encoding: chunked\r\n"
HEAD = b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + API_KEY.encode() + b"\r\n"


async def exchange_raw(port: int, data: bytes) -> bytes:
    """Write `data`, read until the proxy closes the connection."""
    async with asyncio.timeout(5):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(data)
        raw = await reader.read()
        writer.close()
    return raw


def only_response(raw: bytes) -> tuple[int, dict[str, object]]:
    assert len(re.findall(rb"HTTP/1\.1 \d{3} ", raw)) == 1, raw  # one answer, then the close
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), orjson.loads(body)["error"]


@pytest.mark.parametrize(
    "request_bytes, code",
    [
        (HEAD + b"Content-Length: 5\r\n" + TE + b"\r\n0\r\n\r\n" + SMUGGLED, "ambiguous_length"),
        (HEAD + TE + b"Content-Length: 40\r\n\r\n0\r\n\r\n" + SMUGGLED, "ambiguous_length"),
        (HEAD + b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}" + SMUGGLED, "ambiguous_length"),
        (HEAD + b"Content-Length: 2, 2\r\n\r\n{}" + SMUGGLED, "ambiguous_length"),
        (HEAD + b"Content-Length: 2\r\nContent-Length: 60\r\n\r\n{}" + SMUGGLED, "ambiguous_length"),
        (HEAD + b"X-A: a\r\n b\r\nContent-Length: 2\r\n\r\n{}" + SMUGGLED, "obsolete_line_folding"),
        (HEAD + b"X-A: a\x01b\r\nContent-Length: 2\r\n\r\n{}" + SMUGGLED, "invalid_header_characters"),
        (HEAD + b"X-A: a\nContent-Length: 2\r\n\r\n{}" + SMUGGLED, "invalid_header_characters"),
        (HEAD + TE + b"\r\n0x2\r\n{}\r\n0\r\n\r\n" + SMUGGLED, "invalid_http_request"),
        (HEAD + TE + b"\r\n-2\r\n{}\r\n0\r\n\r\n" + SMUGGLED, "invalid_http_request"),
    ],
)  # fmt: skip
async def test_ambiguous_framing_is_400_and_closes(
    proxy: RunningProxy, request_bytes: bytes, code: str
) -> None:
    raw = await exchange_raw(proxy.port, request_bytes)
    status, error = only_response(raw)
    assert (status, error["code"]) == (400, code)
    assert proxy.fake.http.records == []  # neither the request nor the one hidden after it
    assert API_KEY.encode() not in raw


async def test_a_refused_pipelined_request_stops_the_connection(proxy: RunningProxy) -> None:
    good = b"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + API_KEY.encode() + b"\r\n\r\n"
    bad = HEAD + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    raw = await exchange_raw(proxy.port, good + bad + SMUGGLED)
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", raw) == [b"200", b"400"]
    assert [r.path for r in proxy.fake.http.records] == ["/v1/models"]


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization Bearer " + API_KEY.encode() + b"\r\n\r\n",
        b"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization : Bearer " + API_KEY.encode() + b"\r\n\r\n",
        b"GET /v1/models HTTP/1.1 Bearer " + API_KEY.encode() + b"\r\nHost: x\r\n\r\n",
        b"GET /v1/models HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, " + API_KEY.encode() + b"\r\n\r\n",
    ],
)
async def test_parser_refusals_never_quote_the_request(proxy: RunningProxy, request_bytes: bytes) -> None:
    raw = await exchange_raw(proxy.port, request_bytes)
    status, error = only_response(raw)
    assert status in (400, 501)
    assert error["message"] in (
        "The HTTP request is malformed.",
        "The request's transfer coding is not supported.",
    )
    assert API_KEY.encode() not in raw and API_KEY not in proxy.logs.getvalue()
    assert proxy.fake.http.records == []


async def test_a_bad_chunk_mid_upload_is_answered_400(make_proxy: ProxyFactory) -> None:
    proxy = await make_proxy()
    upload = b"POST /v1/uploads/stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    raw = await exchange_raw(proxy.port, upload + b"3\r\nabc\r\nzz\r\n" + SMUGGLED)
    status, error = only_response(raw)
    assert (status, error["code"]) == (400, "invalid_http_request")
    assert all(r.path != "/v1/files" for r in proxy.fake.http.records)


@pytest.mark.parametrize(
    "headers",
    [{"Sec-WebSocket-Key": "Bearer " + API_KEY}, {"Sec-WebSocket-Version": API_KEY}],
)
async def test_websocket_handshake_refusals_never_quote_a_header(
    proxy: RunningProxy, headers: dict[str, str]
) -> None:
    status, body = await raw_upgrade(proxy.port, "/v1/realtime?model=gpt-realtime", headers)
    assert status in (400, 426)
    assert orjson.loads(body)["error"]["message"] == "The WebSocket handshake request is invalid."
    assert API_KEY.encode() not in body and API_KEY not in proxy.logs.getvalue()

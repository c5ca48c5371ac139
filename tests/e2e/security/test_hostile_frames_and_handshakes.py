"""Defects found by adversarial testing (issue 15), each through a real `realtime-proxy` process:
frames that read one way to the proxy and another to the API, and admission/redaction of hostile
handshakes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import Server, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from tests.e2e.helpers import EchoUpstream, error_body, http_get, proxy_process, raw_upgrade

LOOPBACK = ("--host", "127.0.0.1", "--port", "0", "--metrics-port", "0")
SEED = json.loads((Path(__file__).parents[2] / "data" / "seed_response_create.json").read_text())


async def _until_done(ws: Any) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            event = json.loads(await ws.recv())
            if event["type"] in {"response.done", "error"}:
                return event


async def test_a_second_type_key_is_read_as_the_api_reads_it() -> None:
    """`type` twice: the API keeps the last one, a response.create with the seed's object tool_choice.
    The proxy must see the same event and repair it, so the response completes."""
    hidden = json.dumps(SEED["response"])
    frame = '{"type":"input_audio_buffer.clear","type":"response.create","response":' + hidden + "}"
    async with proxy_process("--fake-upstream", *LOOPBACK) as running:
        url = f"ws://127.0.0.1:{running.port}/v1/realtime?model=gpt-realtime"
        async with connect(url, additional_headers={"Authorization": "Bearer sk-any"}) as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"
            await ws.send(frame)
            done = await _until_done(ws)
        assert done["type"] == "response.done"
        assert done["response"]["status"] == "completed", done
        assert done["response"]["output"][0]["name"] == "return_response"
        assert any('"tool_choice_object"' in line for line in running.lines)


# -- admission and redaction: defects 6, 7, 8 ---------------------------------------------------------

TOKEN = "proxy-token-0123456789"
REAL_KEY = "sk-proj-REALKEY0123456789abcdWXYZ"
INJECT_ENV = {
    "REALTIME_PROXY_AUTH__MODE": "inject",
    "REALTIME_PROXY_AUTH__TOKEN_SHA256": hashlib.sha256(TOKEN.encode()).hexdigest(),
    "OPENAI_API_KEY": REAL_KEY,
}
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def _no_secret_in(lines: list[str], *secrets: str) -> None:
    text = "".join(lines)
    assert "Traceback" not in text
    for secret in secrets:
        assert secret not in text


async def test_inject_mode_sends_the_key_to_realtime_routes_only() -> None:
    """A valid proxy token on /v1/files, /v1/models or an admin route: refused, nothing upstream."""
    async with (
        EchoUpstream() as upstream,
        proxy_process("--upstream-url", upstream.url, *LOOPBACK, env=INJECT_ENV) as running,
    ):
        for target in ("/v1/files", "/v1/models?x=1", "/v1/organization/admin_api_keys"):
            status, body = await raw_upgrade(running.port, target, BEARER)
            assert (status, error_body(body)["error"]["code"]) == (403, "path_not_allowed"), target
        # A dot segment is ambiguous: refused before the allow-list is even consulted (edge/target.py).
        status, body = await raw_upgrade(running.port, "/v1/realtime/../files", BEARER)
        assert (status, error_body(body)["error"]["code"]) == (400, "invalid_request_target")
        status, _ = await raw_upgrade(running.port, "/v1/realtime?model=gpt-realtime", BEARER)
        assert status == 101
        conn = await upstream.next_conn()  # the first and only handshake the upstream saw
        assert (conn.path, conn.headers["authorization"]) == (
            "/v1/realtime?model=gpt-realtime",
            f"Bearer {REAL_KEY}",
        )
        assert len(upstream.conns) == 1
        _, metrics = await http_get(running.metrics_port, "/metrics")
        assert b'realtime_proxy_upstream_handshakes_total{result="rejected_path"} 4.0' in metrics
    _no_secret_in(running.lines, REAL_KEY)


async def test_an_upstream_refusal_does_not_echo_the_injected_key() -> None:
    """The API's 401 quotes the key (masked, its last characters visible); a token holder sees neither."""

    def refuse(_connection: Any, request: Request) -> Response:
        key = request.headers["Authorization"].removeprefix("Bearer ")
        masked = f"{key[:6]}{'*' * (len(key) - 10)}{key[-4:]}"
        message = f"Incorrect API key provided: {masked}. Sent: {key}"
        body = json.dumps({"error": {"message": message, "code": "invalid_api_key"}}).encode()
        headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return Response(401, "Unauthorized", headers, body)

    async with (
        serve(lambda _ws: asyncio.sleep(0), "127.0.0.1", 0, process_request=refuse) as upstream,
        proxy_process(
            "--upstream-url", f"ws://127.0.0.1:{upstream_port(upstream)}", *LOOPBACK, env=INJECT_ENV
        ) as running,
    ):
        status, body = await raw_lines_upgrade(running.port, {})
    assert status == 401
    error = error_body(body)["error"]
    assert error["code"] == "invalid_api_key" and error["message"].startswith("Incorrect API key provided: ")
    assert REAL_KEY[-4:].encode() not in body and b"REALKEY" not in body
    _no_secret_in(running.lines, REAL_KEY, REAL_KEY[-4:])


MALFORMED = [
    ({"Authorization": ["Bearer sk-SECRET-one-0001", "Bearer sk-SECRET-two-0002"]}, 400),
    ({"Origin": ["https://a.example", "https://b.example"]}, 400),
    ({"api-key": ["sk-SECRET-one-0001", "sk-SECRET-two-0002"]}, 400),
    ({"api-key": ["sk-SECRET-latin1-\udce9"]}, 400),
    ({"Cookie": ["session=SECRET-cookie-\udce9"]}, 400),
    ({"Sec-WebSocket-Protocol": ["realtime, openai-insecure-api-key.sk-SECRET-sub;x"]}, 400),
]


@pytest.mark.parametrize("mode", ["passthrough", "inject"])
async def test_duplicated_or_malformed_auth_headers_get_a_json_4xx(mode: str) -> None:
    env = INJECT_ENV if mode == "inject" else {}
    async with proxy_process("--fake-upstream", *LOOPBACK, env=env) as running:
        for extra, expected in MALFORMED:
            status, body = await raw_lines_upgrade(running.port, extra)
            assert status == expected, (extra, body)
            assert error_body(body)["error"]["code"] == "invalid_header", extra
            assert b"SECRET" not in body
        status, body = await raw_lines_upgrade(running.port, {"Authorization": ["Token tok-SECRET-token"]})
        assert status == 401 and error_body(body)["error"]["code"] == "invalid_api_key"
        _, metrics = await http_get(running.metrics_port, "/metrics")
        assert b'realtime_proxy_upstream_handshakes_total{result="rejected_header"} 6.0' in metrics
    _no_secret_in(running.lines, "SECRET")


async def test_header_values_websockets_cannot_parse_are_refused_and_not_logged() -> None:
    """Control characters: websockets refuses the request head and says why, quoting the value."""
    unparseable = [
        {"Authorization": ["Token tok-SECRET-token\x7f"]},
        {"Cookie": ["session=SECRET-cookie\x00"]},
        {"X-Custom-Token": ["tok-SECRET-custom\x01"]},
    ]
    async with proxy_process("--fake-upstream", *LOOPBACK, "--log-level", "debug") as running:
        for extra in unparseable:
            status, body = await raw_lines_upgrade(running.port, extra)
            assert (status, error_body(body)["error"]["code"]) == (400, "invalid_request"), extra
        assert await running.stop() == 0
    failed = [json.loads(line) for line in running.lines if '"client_handshake_failed"' in line]
    # One concise line each: the error's type (websockets' message would quote the value).
    assert [(f["error"], f["header"]) for f in failed] == [("ValueError", None)] * 3
    assert all(set(f) >= {"client", "error", "header"} and "SECRET" not in str(f) for f in failed)
    _no_secret_in(running.lines, "SECRET")


async def test_keys_and_audio_in_upstream_error_messages_are_not_logged() -> None:
    """The API quotes unknown parameter names in its errors: a key or audio pasted as one is logged
    redacted."""
    audio = base64.b64encode(bytes(range(256)) * 2).decode()
    names = ["sk-proj-SECRETKEY0123456789", "Authorization: Token SECRET-token", audio]
    async with proxy_process("--fake-upstream", *LOOPBACK) as running:
        url = f"ws://127.0.0.1:{running.port}/v1/realtime?model=gpt-realtime"
        async with connect(url, additional_headers={"Authorization": "Bearer sk-any"}) as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"
            for name in names:
                await ws.send(
                    json.dumps({"type": "session.update", "session": {"type": "realtime", name: 1}})
                )
                error = await _until_error(ws)
                assert name in error["error"]["message"]  # the fake echoes it, as the API does
        assert await running.stop() == 0
    logged = [json.loads(line) for line in running.lines if '"upstream_error"' in line]
    assert len(logged) == 3
    _no_secret_in(running.lines, "SECRET", audio[:64])


async def _until_error(ws: Any) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            event = json.loads(await ws.recv())
            if event["type"] == "error":
                return event


def upstream_port(server: Server) -> int:
    return int(next(iter(server.sockets)).getsockname()[1])


async def raw_lines_upgrade(
    port: int, extra: dict[str, list[str]], target: str = "/v1/realtime?model=gpt-realtime"
) -> tuple[int, bytes]:
    """An upgrade request with headers repeated as given; the status and the body (up to EOF, since a
    relayed refusal has no Content-Length)."""
    lines = [
        f"GET {target} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        *(f"{name}: {value}" for name, values in extra.items() for value in values),
    ]
    if "Authorization" not in extra and "api-key" not in extra:
        lines.append(f"Authorization: Bearer {TOKEN}")
    async with asyncio.timeout(10):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape"))
        await writer.drain()
        raw = await reader.read()
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body

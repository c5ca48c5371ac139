"""The official SDK with base_url set to the proxy: REST pass-through and the Realtime HTTP routes
(client secrets, WebRTC calls, SIP call actions) repaired on the way, against a fake that refuses
what the real API refuses."""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from openai import APIStatusError, AsyncOpenAI, BadRequestError, DefaultAsyncHttpxClient

from realtime_proxy.core.rules import Refuse, Rule
from realtime_proxy.edge.server import ProxyServer
from realtime_proxy.fake_upstream import FakeUpstream
from realtime_proxy.fake_upstream.http_realtime import SDP_ANSWER
from realtime_proxy.settings import load_settings
from tests.conftest import API_KEY, ProxyFactory, RunningProxy, sample
from tests.e2e.helpers import self_signed

SDP_OFFER = (
    "v=0\r\no=- 7139462193 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\n"
)
MISSING_TYPE = re.escape("Missing required parameter: 'session.type'.")
# A beta-era session config, as older WebRTC samples send it; the GA API refuses every beta name.
BETA_SESSION: dict[str, Any] = {
    "modalities": ["text", "audio"],
    "voice": "alloy",
    "input_audio_format": "pcm16",
    "temperature": 0.7,
    "instructions": "Be brief.",
}


_OPEN: list[AsyncOpenAI] = []


def sdk(base_url: str) -> AsyncOpenAI:
    client = AsyncOpenAI(api_key=API_KEY, base_url=base_url, max_retries=0, timeout=10)
    _OPEN.append(client)
    return client


@pytest.fixture(autouse=True)
async def _close_clients() -> AsyncIterator[None]:
    yield
    while _OPEN:
        await _OPEN.pop().close()


def http_lines(proxy: RunningProxy) -> list[dict[str, Any]]:
    return [line for line in proxy.log_lines() if line.get("event") == "http_request"]


async def test_models_list_is_forwarded_and_accounted(proxy: RunningProxy) -> None:
    async with asyncio.timeout(10):
        models = [model.id async for model in sdk(proxy.base_url).models.list()]
    assert "gpt-realtime" in models
    (record,) = proxy.fake.http.records
    assert (record.method, record.path, record.headers["authorization"]) == (
        "GET",
        "/v1/models",
        f"Bearer {API_KEY}",
    )
    samples = await proxy.scrape()
    assert sample(samples, "realtime_proxy_http_requests_total", route="other", status="2xx") == 1
    assert sample(samples, "realtime_proxy_http_request_duration_seconds_count", route="other") == 1
    (line,) = http_lines(proxy)
    assert {k: line[k] for k in ("method", "route", "status", "outcome")} == {
        "method": "GET", "route": "other", "status": 200, "outcome": "complete"}  # fmt: skip
    assert API_KEY not in proxy.logs.getvalue()


async def test_streamed_response_reaches_the_client_before_the_upstream_finishes(proxy: RunningProxy) -> None:
    proxy.fake.http.sse_interval = 0.05
    deltas: list[str] = []
    finished_at_first_delta: bool | None = None
    async with asyncio.timeout(10):
        stream = await sdk(proxy.base_url).responses.create(model="gpt-4o-mini", input="hi", stream=True)
        async for event in stream:
            if event.type == "response.output_text.delta":
                if finished_at_first_delta is None:
                    finished_at_first_delta = proxy.fake.http.stream_finished.is_set()
                deltas.append(event.delta)
    assert finished_at_first_delta is False  # the first chunk was not held back until the end
    assert "".join(deltas) == "Hello from the fake upstream."
    assert proxy.fake.http.stream_finished.is_set()


async def test_streamed_chat_completion_through_the_proxy(proxy: RunningProxy) -> None:
    proxy.fake.http.sse_interval = 0.05
    first_seen_unfinished = False
    text = ""
    async with asyncio.timeout(10):
        stream = await sdk(proxy.base_url).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                if not text:
                    first_seen_unfinished = not proxy.fake.http.stream_finished.is_set()
                text += chunk.choices[0].delta.content
    assert first_seen_unfinished
    assert text == "Hello from the fake upstream."


async def test_beta_shaped_client_secret_is_repaired(proxy: RunningProxy) -> None:
    fake_base = f"http://127.0.0.1:{proxy.fake.port}/v1"
    async with asyncio.timeout(10):
        with pytest.raises(BadRequestError, match=MISSING_TYPE):  # the API refuses it as sent
            await sdk(fake_base).realtime.client_secrets.create(session=BETA_SESSION)  # type: ignore[arg-type]
        secret = await sdk(proxy.base_url).realtime.client_secrets.create(session=BETA_SESSION)  # type: ignore[arg-type]
    assert secret.value.startswith("ek_")
    assert secret.session.type == "realtime"
    assert secret.session.output_modalities == ["audio"]
    assert secret.session.audio.output.voice == "alloy"  # type: ignore[union-attr]
    forwarded = orjson.loads(proxy.fake.http.records[-1].body)["session"]
    assert "temperature" not in forwarded and forwarded["audio"]["input"]["format"]["type"] == "audio/pcm"
    samples = await proxy.scrape()
    for rule in ("session_type_missing", "modalities_to_output_modalities", "flat_audio_settings"):
        assert sample(samples, "realtime_proxy_rewrites_total", rule=rule) >= 1, rule
    assert (
        sample(samples, "realtime_proxy_http_requests_total", route="realtime_client_secrets", status="2xx")
        == 1
    )
    rewrites = [line for line in proxy.log_lines() if line.get("event") == "rewrite"]
    assert rewrites and all(line["route"] == "realtime_client_secrets" for line in rewrites)
    (request,) = http_lines(proxy)  # one request: its rewrites carry its id, and the API's
    assert {line["request_id"] for line in rewrites} == {request["request_id"]}
    assert request["upstream_request_id"] == proxy.fake.http.records[-1].request_id
    assert request["client"].startswith("127.0.0.1:")


async def test_valid_transcription_secret_is_forwarded_byte_for_byte(proxy: RunningProxy) -> None:
    session = {"type": "transcription", "audio": {"input": {"transcription": {"model": "gpt-4o-transcribe"}}}}
    async with asyncio.timeout(10):
        secret = await sdk(proxy.base_url).realtime.client_secrets.create(session=session)  # type: ignore[arg-type]
    assert secret.session.type == "transcription"
    assert orjson.loads(proxy.fake.http.records[-1].body) == {"session": session}
    assert not [line for line in proxy.log_lines() if line.get("event") == "rewrite"]


async def test_translation_secret_is_not_given_a_session_type(proxy: RunningProxy) -> None:
    session = {"model": "gpt-realtime-translate", "audio": {"output": {"language": "es"}}}
    async with asyncio.timeout(10):
        secret = await sdk(proxy.base_url).realtime.translations.client_secrets.create(session=session)  # type: ignore[arg-type]
    assert secret.session.type == "translation"
    assert orjson.loads(proxy.fake.http.records[-1].body)["session"] == session


async def test_webrtc_offer_keeps_its_sdp_and_gets_a_repaired_session(proxy: RunningProxy) -> None:
    async with asyncio.timeout(10):
        raw = await sdk(proxy.base_url).realtime.calls.with_raw_response.create(
            sdp=SDP_OFFER,
            session={"type": "realtime", **BETA_SESSION},  # type: ignore[typeddict-item]
        )
    assert raw.http_response.status_code == 201
    assert raw.http_response.content == SDP_ANSWER
    assert raw.headers["location"].startswith("/v1/realtime/calls/rtc_")
    record = proxy.fake.http.records[-1]
    assert record.parts["sdp"] == SDP_OFFER.encode()  # byte for byte
    session = orjson.loads(record.parts["session"])
    assert "modalities" not in session and session["output_modalities"] == ["audio"]


async def test_bare_sdp_offer_passes_through(proxy: RunningProxy) -> None:
    async with asyncio.timeout(10):
        answer = await sdk(proxy.base_url).realtime.calls.create(sdp=SDP_OFFER)
    assert answer.content == SDP_ANSWER
    record = proxy.fake.http.records[-1]
    assert (record.headers["content-type"], record.body) == ("application/sdp", SDP_OFFER.encode())


async def test_sip_accept_is_repaired_and_other_actions_pass_through(proxy: RunningProxy) -> None:
    client = sdk(proxy.base_url)
    async with asyncio.timeout(10):
        await client.realtime.calls.accept("rtc_123", type="realtime", extra_body={"modalities": ["text"]})
        await client.realtime.calls.hangup("rtc_123")
    accept, hangup = proxy.fake.http.records
    assert orjson.loads(accept.body) == {"type": "realtime", "output_modalities": ["text"]}
    assert (hangup.path, hangup.body) == ("/v1/realtime/calls/rtc_123/hangup", b"")
    samples = await proxy.scrape()
    assert (
        sample(samples, "realtime_proxy_http_requests_total", route="realtime_call_action", status="2xx") == 2
    )


def _refuse_instructions(event: dict[str, Any], state: Any, out: list[Any]) -> None:
    if event["session"].get("instructions") == "forbidden":
        raise Refuse(
            "instructions_forbidden", "These instructions are not allowed here.", "session.instructions"
        )


REFUSING_RULE = Rule(
    name="refuse_forbidden_instructions", description="test rule", lossless=True, default_enabled=True,
    event_types=frozenset({"session.update"}), prevents="-", apply=_refuse_instructions,
)  # fmt: skip


async def test_refused_session_config_is_answered_like_the_api(make_proxy: ProxyFactory) -> None:
    proxy = await make_proxy(extra_rules=(REFUSING_RULE,))
    session = {"type": "realtime", "instructions": "forbidden"}
    async with asyncio.timeout(10):
        with pytest.raises(BadRequestError) as refused:
            await sdk(proxy.base_url).realtime.client_secrets.create(session=session)  # type: ignore[arg-type]
    assert refused.value.status_code == 400
    assert refused.value.code == "instructions_forbidden"
    assert proxy.fake.http.records == []  # never forwarded
    samples = await proxy.scrape()
    assert sample(samples, "realtime_proxy_refusals_total", rule="refuse_forbidden_instructions") == 1


async def test_dry_run_forwards_the_config_unchanged(make_proxy: ProxyFactory) -> None:
    proxy = await make_proxy(dry_run=True)
    async with asyncio.timeout(10):
        with pytest.raises(BadRequestError, match=MISSING_TYPE):
            await sdk(proxy.base_url).realtime.client_secrets.create(session=BETA_SESSION)  # type: ignore[arg-type]
    assert orjson.loads(proxy.fake.http.records[-1].body) == {"session": BETA_SESSION}
    rewrites = [line for line in proxy.log_lines() if line.get("event") == "rewrite"]
    assert rewrites and not any(line["applied"] for line in rewrites)


async def test_unreachable_upstream_is_a_502_with_an_api_error(make_proxy: ProxyFactory) -> None:
    proxy = await make_proxy(upstream_url="ws://127.0.0.1:9")  # discard port: nothing listens
    async with asyncio.timeout(10):
        with pytest.raises(APIStatusError) as failed:
            await sdk(proxy.base_url).models.list()
    assert failed.value.status_code == 502
    assert failed.value.body == {
        "message": "The proxy could not reach the upstream.", "type": "server_error", "param": None,
        "code": "upstream_unreachable"}  # fmt: skip


async def _whole_surface(client: AsyncOpenAI, **ws_options: Any) -> None:
    """What an app does with one client: REST, a streamed response, WebRTC/SIP configs, a WebSocket."""
    async with asyncio.timeout(15):
        assert [model.id async for model in client.models.list()]
        stream = await client.responses.create(model="gpt-4o-mini", input="hi", stream=True)
        assert [event.type async for event in stream][-1] == "response.completed"
        secret = await client.realtime.client_secrets.create(session=BETA_SESSION)  # type: ignore[arg-type]
        assert secret.session.type == "realtime"
        answer = await client.realtime.calls.create(
            sdp=SDP_OFFER, session={"type": "realtime", **BETA_SESSION}
        )  # type: ignore[typeddict-item]
        assert answer.content == SDP_ANSWER
        async with client.realtime.connect(
            model="gpt-realtime", websocket_connection_options=ws_options
        ) as rt:  # type: ignore[arg-type]
            assert (await rt.recv()).type == "session.created"
            await rt.session.update(session={"type": "realtime", "output_modalities": ["text"]})
            assert (await rt.recv()).type == "session.updated"


async def test_one_client_object_for_rest_and_websocket(proxy: RunningProxy) -> None:
    await _whole_surface(sdk(proxy.base_url))
    assert [(r.method, r.path) for r in proxy.fake.http.records] == [
        ("GET", "/v1/models"),
        ("POST", "/v1/responses"),
        ("POST", "/v1/realtime/client_secrets"),
        ("POST", "/v1/realtime/calls"),
    ]
    assert [c.path for c in proxy.fake.connections] == ["/v1/realtime"]
    samples = await proxy.scrape()
    assert sample(samples, "realtime_proxy_upstream_handshakes_total", result="ok") == 1


async def test_one_base_url_over_tls(fake: FakeUpstream, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    flags = {"host": "127.0.0.1", "port": 0, "upstream_url": fake.url, "ping_interval": 0}
    server = ProxyServer(load_settings(None, environ={}, flags=flags))
    await server.start(server_tls)
    trust = ssl.create_default_context(cafile=str(cert))
    try:
        base_url = f"https://127.0.0.1:{server.port}/v1"
        client = AsyncOpenAI(
            api_key=API_KEY,
            base_url=base_url,
            max_retries=0,
            http_client=DefaultAsyncHttpxClient(verify=trust),
        )
        _OPEN.append(client)
        await _whole_surface(client, ssl=trust)
    finally:
        await server.shutdown(grace=0)
    assert len(fake.http.records) == 4 and len(fake.connections) == 1

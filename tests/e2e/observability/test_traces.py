"""OpenTelemetry traces end to end: a full SDK session through the proxy (a rewritten session.update, a
function call, an out-of-band response that is rewritten, fails once and is retried) exported by the
real OTLP/HTTP exporter to an in-test receiver, decoded with opentelemetry-proto. The span tree, the
gen_ai.* / realtime_proxy.* attributes, the client's traceparent, and no secret or audio anywhere."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
from openai import AsyncOpenAI
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from realtime_proxy.observe.tracing import tracing_from_environment
from tests.conftest import ProxyFactory, RunningProxy
from tests.e2e.realtime_client import RETURN_RESPONSE_TOOL

SECRET = "sk-proj-TRACESECRET0123456789"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"


class OtlpReceiver:
    """POST /v1/traces, protobuf bodies, as an OpenTelemetry collector receives them."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.paths: list[str] = []
        self.server: asyncio.Server | None = None

    @property
    def endpoint(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            request_line = await reader.readline()
            if not request_line:
                break
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            assert headers.get("content-type") == "application/x-protobuf"
            self.paths.append(request_line.split()[1].decode())
            self.bodies.append(await reader.readexactly(int(headers["content-length"])))
            answer = ExportTraceServiceResponse().SerializeToString()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n"
                + f"Content-Length: {len(answer)}\r\n\r\n".encode()
                + answer
            )
            await writer.drain()
        writer.close()

    def spans(self) -> list[Span]:
        found: list[Span] = []
        for body in self.bodies:
            request = ExportTraceServiceRequest.FromString(body)
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    found.extend(scope_spans.spans)
        return found

    def service_names(self) -> set[str]:
        names = set()
        for body in self.bodies:
            for resource_spans in ExportTraceServiceRequest.FromString(body).resource_spans:
                names |= {
                    a.value.string_value
                    for a in resource_spans.resource.attributes
                    if a.key == "service.name"
                }
        return names


@pytest.fixture
async def receiver() -> AsyncIterator[OtlpReceiver]:
    otlp = OtlpReceiver()
    otlp.server = await asyncio.start_server(otlp._serve, "127.0.0.1", 0)
    yield otlp
    otlp.server.close()


def value(any_value: AnyValue) -> Any:
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [value(v) for v in any_value.array_value.values]
    return getattr(any_value, kind) if kind else None


def attributes(item: Any) -> dict[str, Any]:
    return {a.key: value(a.value) for a in item.attributes}


def events(span: Span) -> list[tuple[str, dict[str, Any]]]:
    return [(e.name, attributes(e)) for e in span.events]


async def run_session(proxy: RunningProxy, audio_chunk: str) -> None:
    client = AsyncOpenAI(api_key=SECRET, websocket_base_url=proxy.ws_base)
    traceparent = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"
    async with client.realtime.connect(
        model="gpt-realtime", extra_headers={"traceparent": traceparent}
    ) as conn:
        await conn.recv()  # session.created
        session = {"type": "realtime", "modalities": ["text"], "tools": [RETURN_RESPONSE_TOOL]}
        await conn.send({"type": "session.update", "session": session})  # rewritten: modalities
        async with asyncio.timeout(5):
            assert (await conn.recv()).type == "session.updated"
        await conn.input_audio_buffer.append(audio=audio_chunk)
        await conn.send(
            {"type": "response.create", "event_id": "client_tool", "response": {"tool_choice": "required"}}
        )
        assert (await until_done(conn)).response.output[0].type == "function_call"
        proxy.fake.fail_next_out_of_band(1)
        oob = {"conversation": "none", "modalities": ["text"], "tool_choice": "none"}  # rewritten: modalities
        await conn.send({"type": "response.create", "event_id": "client_oob", "response": oob})
        assert (await until_done(conn)).response.status == "completed"
    async with asyncio.timeout(5):
        while proxy.server.relays:
            await asyncio.sleep(0.01)


async def until_done(connection: Any) -> Any:
    async with asyncio.timeout(10):
        async for event in connection:
            if event.type == "response.done":
                return event
    raise AssertionError("connection ended before response.done")


async def test_a_session_and_its_responses_as_a_span_tree(
    make_proxy: ProxyFactory, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "voice-gateway")
    tracing = tracing_from_environment(os.environ)
    assert tracing is not None
    proxy = await make_proxy(retry={"backoff_base": 0.01, "backoff_cap": 0.02}, tracing=tracing)
    audio_chunk = base64.b64encode(os.urandom(960)).decode()  # unique: cannot appear by chance
    try:
        await run_session(proxy, audio_chunk)
    finally:
        await asyncio.wait_for(asyncio.to_thread(tracing.shutdown), 10)  # flush over HTTP

    assert set(receiver.paths) == {"/v1/traces"}
    assert receiver.service_names() == {"voice-gateway"}
    spans = receiver.spans()
    (session,) = [s for s in spans if s.kind == Span.SPAN_KIND_SERVER]
    responses = sorted(
        (s for s in spans if s.kind == Span.SPAN_KIND_CLIENT), key=lambda s: s.start_time_unix_nano
    )
    assert len(spans) == 3 and len(responses) == 2  # one span per response the client saw

    # The client's traceparent: same trace, the session span is the child of the client's span.
    assert {s.trace_id.hex() for s in spans} == {TRACE_ID}
    assert session.parent_span_id.hex() == PARENT_SPAN_ID
    assert all(r.parent_span_id == session.span_id for r in responses)
    assert session.name == "realtime_session gpt-realtime"
    session_attributes = attributes(session)
    assert session_attributes["gen_ai.provider.name"] == "openai" == session_attributes["gen_ai.system"]
    assert session_attributes["gen_ai.request.model"] == "gpt-realtime"
    assert session_attributes["realtime_proxy.outcome"] == "client_closed"
    assert session_attributes["realtime_proxy.responses"] == 3  # upstream responses: one failed attempt
    assert session_attributes["realtime_proxy.rewrites"] == 2
    assert session_attributes["realtime_proxy.rewrite.rules"] == ["modalities_to_output_modalities"]
    assert [
        (name, a["realtime_proxy.rewrite.rule"], a["realtime_proxy.event_type"])
        for name, a in events(session)
    ] == [("realtime_proxy.rewrite", "modalities_to_output_modalities", "session.update")]

    upstream = [json.loads(f) for f in proxy.fake.connections[-1].sent]
    dones = {e["response"]["id"]: e["response"] for e in upstream if e["type"] == "response.done"}
    tool, oob = responses
    tool_attributes = attributes(tool)
    tool_done = dones[tool_attributes["gen_ai.response.id"]]
    assert tool.name == "chat gpt-realtime"
    assert tool_attributes["gen_ai.operation.name"] == "chat"
    assert tool_attributes["gen_ai.request.model"] == "gpt-realtime"
    assert tool_attributes["gen_ai.response.finish_reasons"] == ["completed"]
    assert tool_attributes["gen_ai.usage.input_tokens"] == tool_done["usage"]["input_tokens"]
    assert tool_attributes["gen_ai.usage.output_tokens"] == tool_done["usage"]["output_tokens"]
    assert tool_attributes["realtime_proxy.out_of_band"] is False
    assert (
        0
        < tool_attributes["realtime_proxy.time_to_first_delta_s"]
        < (tool.end_time_unix_nano - tool.start_time_unix_nano) / 1e9
    )
    assert "realtime_proxy.retry.attempts" not in tool_attributes and events(tool) == []

    # The retried out-of-band response: one span from the client's create to the done it saw.
    oob_attributes = attributes(oob)
    failed_id, final_id = [i for i, r in dones.items() if r.get("conversation_id", None) is None]
    assert dones[failed_id]["status"] == "failed" and dones[final_id]["status"] == "completed"
    assert oob_attributes["gen_ai.response.id"] == final_id
    assert oob_attributes["gen_ai.response.finish_reasons"] == ["completed"]
    assert oob_attributes["realtime_proxy.out_of_band"] is True
    assert oob_attributes["realtime_proxy.retry.attempts"] == 2
    assert oob_attributes["realtime_proxy.retry.outcome"] == "recovered"
    assert oob_attributes["realtime_proxy.rewrite.rules"] == ["modalities_to_output_modalities"]
    assert "realtime_proxy.rewrite.rules" not in tool_attributes
    assert oob_attributes["gen_ai.usage.output_tokens"] == dones[final_id]["usage"]["output_tokens"]
    (rewrite, attempt) = events(oob)
    assert rewrite == (
        "realtime_proxy.rewrite",
        {
            "realtime_proxy.rewrite.rule": "modalities_to_output_modalities",
            "realtime_proxy.rewrite.path": "response.modalities",
            "realtime_proxy.rewrite.lossless": True,
            "realtime_proxy.rewrite.applied": True,
            "realtime_proxy.rewrite.via": "rules",
            "realtime_proxy.rewrite.count": 1,
            "realtime_proxy.event_type": "response.create",
        },
    )
    assert attempt[0] == "realtime_proxy.retry_attempt"
    assert attempt[1]["realtime_proxy.retry.attempt"] == 2
    assert attempt[1]["realtime_proxy.retry.failed_response_id"] == failed_id
    assert attempt[1]["error.type"] == "server_error"
    assert oob.start_time_unix_nano < oob.events[1].time_unix_nano < oob.end_time_unix_nano

    # Nothing secret or audio in anything exported.
    exported = b"".join(receiver.bodies)
    audio_out = [e["delta"] for e in upstream if e["type"] == "response.output_audio.delta"]
    for forbidden in [SECRET, audio_chunk[:64], *(chunk[:64] for chunk in audio_out)]:
        assert forbidden.encode() not in exported
    assert b"Bearer" not in exported and b"authorization" not in exported.lower()


def test_not_configured_means_no_tracer_and_no_opentelemetry_import() -> None:
    """Without an OTLP endpoint the proxy builds no tracer and never imports OpenTelemetry."""
    import subprocess
    import sys

    code = (
        "import os, sys\n"
        "from realtime_proxy.observe.tracing import tracing_from_environment\n"
        "import realtime_proxy.edge.server, realtime_proxy.observe.observe, realtime_proxy.commands.cli\n"
        "assert tracing_from_environment(os.environ) is None\n"
        "assert not [m for m in sys.modules if m.startswith('opentelemetry')], sorted(sys.modules)\n"
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", code], env=environ, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_EXPORTER": "none"},
    ],
)
def test_tracing_stays_off_unless_an_endpoint_is_configured(environ: dict[str, str]) -> None:
    assert tracing_from_environment(environ) is None


def test_an_endpoint_without_the_extra_installed_warns_and_runs_untraced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    import structlog.testing

    # as if opentelemetry were not installed
    monkeypatch.setitem(sys.modules, "realtime_proxy.observe.otel", None)
    with structlog.testing.capture_logs() as logs:
        assert tracing_from_environment({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}) is None
    assert [(line["event"], line["log_level"]) for line in logs] == [("tracing_unavailable", "warning")]


async def test_turn_taking_counts_on_the_session_span(
    make_proxy: ProxyFactory, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    tracing = tracing_from_environment(os.environ)
    assert tracing is not None
    proxy = await make_proxy(tracing=tracing)
    try:
        client = AsyncOpenAI(api_key=SECRET, websocket_base_url=proxy.ws_base)
        async with client.realtime.connect(model="gpt-realtime") as conn:
            await conn.recv()  # session.created
            await conn.response.create(response={"output_modalities": ["text"]})
            await conn.response.create(event_id="second", response={"output_modalities": ["text"]})
            await until_done(conn)
            await until_done(conn)
        async with asyncio.timeout(5):
            while proxy.server.relays:
                await asyncio.sleep(0.01)
    finally:
        await asyncio.wait_for(asyncio.to_thread(tracing.shutdown), 10)
    (session,) = [s for s in receiver.spans() if s.kind == Span.SPAN_KIND_SERVER]
    counts = {k: v for k, v in attributes(session).items() if k.startswith("realtime_proxy.orchestration.")}
    assert counts == {"realtime_proxy.orchestration.held": 1, "realtime_proxy.orchestration.released": 1}


async def test_a_resumption_is_a_span_of_the_session(
    make_proxy: ProxyFactory, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 25: one `realtime_resume` span per resumption, a child of the session span."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    tracing = tracing_from_environment(os.environ)
    assert tracing is not None
    proxy = await make_proxy(tracing=tracing)
    proxy.fake.drop_after_responses, proxy.fake.drops_left = 1, 1
    try:
        client = AsyncOpenAI(api_key=SECRET, websocket_base_url=proxy.ws_base)
        async with client.realtime.connect(model="gpt-realtime") as conn:
            await conn.recv()  # session.created
            for _ in range(2):
                await conn.response.create(response={"output_modalities": ["text"]})
                assert (await until_done(conn)).response.status == "completed"
        async with asyncio.timeout(5):
            while proxy.server.relays:
                await asyncio.sleep(0.01)
    finally:
        await asyncio.wait_for(asyncio.to_thread(tracing.shutdown), 10)
    spans = receiver.spans()
    (resume,) = [s for s in spans if s.name == "realtime_resume"]
    (session,) = [s for s in spans if s.name.startswith("realtime_session")]
    assert resume.parent_span_id == session.span_id
    assert attributes(resume)["realtime_proxy.resume.cause"] == "dropped"
    assert attributes(resume)["realtime_proxy.resume.outcome"] == "resumed"

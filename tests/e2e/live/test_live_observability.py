"""A Live session's metrics, summary line and spans, through the proxy with the official SDK (issue 22):
session count and duration, billable seconds and USD cost per model from session.usage.updated,
time from response.create to the first delegated delta, errors by code; a `live_session` span with
one `chat` child span per delegated response, grouped by delegation_id."""

from __future__ import annotations

import asyncio

import pytest
from openai import AsyncOpenAI
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from realtime_proxy.observe.otel import Tracing
from tests.conftest import API_KEY, ProxyFactory, RunningProxy, sample
from tests.e2e.live.test_live_sdk import DELEGATION, until


async def live_session(proxy: RunningProxy) -> None:
    client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=proxy.ws_base)
    async with client.live.connect() as connection:
        await connection.session.start(session={"model": "gpt-live-1", "delegation": DELEGATION})
        await until(connection, "session.started")
        # A Realtime habit: the API refuses it with invalid_value (an error, the session goes on).
        await connection.send_raw('{"type":"conversation.item.create","event_id":"rt_1"}')  # type: ignore[attr-defined]
        await connection.response.create(event_id="c1")
        await connection.response.create(event_id="c2")
        await until(connection, "session.output_audio.delta", count=2)
        await connection.session.close()
        await until(connection, "session.closed")
    async with asyncio.timeout(5):
        while proxy.server.relays:
            await asyncio.sleep(0.01)


async def test_live_session_metrics_and_summary(proxy: RunningProxy) -> None:
    await live_session(proxy)
    samples = await proxy.scrape()
    assert sample(samples, "realtime_proxy_sessions_opened_total", route="live") == 1
    assert sample(samples, "realtime_proxy_sessions_opened_total", route="realtime") == 0
    ended = {k: v for k, v in samples.items() if k.startswith("realtime_proxy_sessions_closed_total{") and v}
    assert list(ended) == ['realtime_proxy_sessions_closed_total{outcome="upstream_closed",route="live"}']
    assert sample(samples, "realtime_proxy_live_session_duration_seconds_count") == 1
    # The fake bills 30 s per answered response: 60 s at 0.05 USD/min.
    assert sample(samples, "realtime_proxy_live_usage_seconds_total", model="gpt-live-1", kind="active") == 60
    assert sample(samples, "realtime_proxy_live_cost_usd_total", model="gpt-live-1") == pytest.approx(0.05)
    ttfd = "realtime_proxy_live_time_to_first_delta_seconds_count"
    assert sample(samples, ttfd, trigger="response_create", modality="delegated") == 2
    assert sample(samples, "realtime_proxy_live_errors_total", code="invalid_value") == 1
    assert sample(samples, "realtime_proxy_live_delegated_responses_total", status="completed") == 2
    assert sample(samples, "realtime_proxy_live_delegated_tokens_total", direction="input") == 24
    # Nothing of the Realtime machinery touched the session.
    assert sum(v for k, v in samples.items() if k.startswith("realtime_proxy_orchestration_total")) == 0
    assert sum(v for k, v in samples.items() if k.startswith("realtime_proxy_rewrites_total")) == 0
    closed = [line for line in proxy.log_lines() if line["event"] == "session_closed"]
    assert len(closed) == 1 and closed[0]["route"] == "live"
    assert closed[0]["priced_as"] == "gpt-live-1" and closed[0]["cost_usd"] == pytest.approx(0.05)
    assert closed[0]["live_seconds"] == 60 and closed[0]["delegated_responses"] == {"completed": 2}
    errors = [line for line in proxy.log_lines() if line["event"] == "live_error"]
    assert [(e["code"], e["client_event_id"]) for e in errors] == [("invalid_value", "rt_1")]


async def test_live_session_spans(make_proxy: ProxyFactory) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    proxy = await make_proxy(tracing=Tracing(provider))
    await live_session(proxy)
    spans = exporter.get_finished_spans()
    sessions = [s for s in spans if s.kind == SpanKind.SERVER]
    assert [s.name for s in sessions] == ["live_session gpt-live-1"]
    session = sessions[0]
    assert session.attributes is not None
    assert session.attributes["gen_ai.request.model"] == "gpt-live-1"
    assert session.attributes["realtime_proxy.route"] == "live"
    assert session.attributes["realtime_proxy.cost_usd"] == pytest.approx(0.05)
    assert [e.name for e in session.events].count("realtime_proxy.live.first_delta") == 2
    assert "realtime_proxy.live.error" in [e.name for e in session.events]
    delegated = [s for s in spans if s.kind == SpanKind.CLIENT]
    assert [s.name for s in delegated] == ["chat gpt-5.2", "chat gpt-5.2"]
    groups = {s.attributes["realtime_proxy.live.delegation_id"] for s in delegated if s.attributes}
    assert len(groups) == 2
    for span in delegated:
        assert span.parent is not None and span.parent.span_id == session.context.span_id
        assert span.attributes is not None
        assert span.attributes["gen_ai.usage.input_tokens"] == 12
        assert span.attributes["gen_ai.usage.output_tokens"] == 4
        assert span.attributes["gen_ai.response.finish_reasons"] == ("completed",)
        assert span.attributes["realtime_proxy.live.model"] == "gpt-live-1"
    provider.shutdown()

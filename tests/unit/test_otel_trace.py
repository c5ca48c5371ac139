"""SessionTrace without a network: the spans it writes for the paths the end-to-end test does not take
(a retry cancelled in backoff, responses never given an outcome, refusals), into the SDK's in-memory
exporter."""

from __future__ import annotations

from typing import Any

import pytest
import structlog.testing
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from realtime_proxy.core.actions import Refusal, ResponseDone, RetryAttempt, RetryOutcome, Rewrite
from realtime_proxy.observe.otel import SessionTrace, Tracing

TOKENS = [("input", "text", False, 10), ("input", "audio", True, 5), ("output", "text", False, 7)]


def started() -> tuple[SessionTrace, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace = Tracing(provider).session(
        session_id="s1", model="gpt-realtime", traceparent=None, tracestate=None
    )
    return trace, exporter


def done(
    trace: SessionTrace, response_id: str, status: str, *, out_of_band: bool, event_id: str | None
) -> None:
    error_type = "server_error" if status == "failed" else None
    tokens = TOKENS if status == "completed" else []
    item = ResponseDone(response_id, status, error_type, None, 0.25, out_of_band, tokens, event_id)
    trace.on_response_done(item, status, 0.0)


def rewrite(event_id: str, event_type: str, path: str) -> Rewrite:
    return Rewrite(event_id, event_type, "drop_temperature", path, 0.8, None, False, True)


def by_kind(exporter: InMemorySpanExporter) -> tuple[ReadableSpan, list[ReadableSpan]]:
    spans = exporter.get_finished_spans()
    (session,) = [s for s in spans if s.kind is SpanKind.SERVER]
    return session, [s for s in spans if s.kind is SpanKind.CLIENT]


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def test_a_retry_cancelled_in_backoff_is_one_span_ending_in_the_outcome() -> None:
    trace, exporter = started()
    done(trace, "resp_1", "failed", out_of_band=True, event_id="evt_1")
    trace.on_retry_attempt(RetryAttempt(2, 0.5, "resp_1", "server_error", None, "evt_1"))
    trace.on_retry_outcome(RetryOutcome("cancelled", 2, 0.5, "resp_1", "evt_1", "client_cancelled"))
    assert len(exporter.get_finished_spans()) == 1  # the response, before the session ends
    trace.end("client_closed", {})
    session, (response,) = by_kind(exporter)
    assert attrs(response)["realtime_proxy.retry.outcome"] == "cancelled"
    assert attrs(response)["realtime_proxy.retry.attempts"] == 2
    assert [e.name for e in response.events] == ["realtime_proxy.retry_attempt"]
    assert response.parent is not None and response.parent.span_id == session.context.span_id


def test_responses_without_an_outcome_are_written_when_the_session_ends() -> None:
    trace, exporter = started()
    done(trace, "resp_1", "completed", out_of_band=True, event_id=None)  # e.g. retries switched off
    done(trace, "resp_2", "completed", out_of_band=False, event_id=None)
    assert [s.name for s in exporter.get_finished_spans()] == ["chat gpt-realtime"]  # the in-band one
    trace.end("client_closed", {"realtime_proxy.responses": 2})
    session, responses = by_kind(exporter)
    assert sorted(attrs(r)["gen_ai.response.id"] for r in responses) == ["resp_1", "resp_2"]
    assert {attrs(r)["gen_ai.usage.input_tokens"] for r in responses} == {15}
    assert {attrs(r)["gen_ai.usage.output_tokens"] for r in responses} == {7}
    assert attrs(session)["realtime_proxy.responses"] == 2


def test_refusals_and_non_response_rewrites_are_session_events() -> None:
    trace, exporter = started()
    code = "input_audio_buffer_commit_empty"
    trace.on_refusal(Refusal("evt_9", "input_audio_buffer.commit", "empty_commit", code, "too small", True))
    trace.on_rewrite(rewrite("evt_8", "session.update", "session.temperature"))
    trace.end("client_closed", {})
    session, responses = by_kind(exporter)
    assert responses == []
    assert [(e.name, dict(e.attributes or {})) for e in session.events] == [
        (
            "realtime_proxy.refusal",
            {
                "realtime_proxy.refusal.rule": "empty_commit",
                "realtime_proxy.refusal.code": "input_audio_buffer_commit_empty",
                "realtime_proxy.event_type": "input_audio_buffer.commit",
            },
        ),
        (
            "realtime_proxy.rewrite",
            {
                "realtime_proxy.rewrite.rule": "drop_temperature",
                "realtime_proxy.rewrite.path": "session.temperature",
                "realtime_proxy.rewrite.lossless": False,
                "realtime_proxy.rewrite.applied": True,
                "realtime_proxy.rewrite.via": "rules",
                "realtime_proxy.rewrite.count": 1,
                "realtime_proxy.event_type": "session.update",
            },
        ),
    ]


def test_a_response_create_rewrite_waits_for_its_response() -> None:
    trace, exporter = started()
    trace.on_rewrite(rewrite("evt_1", "response.create", "response.temperature"))
    done(trace, "resp_1", "completed", out_of_band=False, event_id="evt_1")
    trace.end("client_closed", {})
    session, (response,) = by_kind(exporter)
    assert list(session.events) == []
    assert [dict(e.attributes or {})["realtime_proxy.rewrite.rule"] for e in response.events] == [
        "drop_temperature"
    ]


def test_a_tracing_bug_costs_the_trace_not_the_session(monkeypatch: pytest.MonkeyPatch) -> None:
    trace, exporter = started()

    def broken(response: object) -> None:
        raise RuntimeError("exporter bug")

    monkeypatch.setattr(trace, "_write", broken)
    with structlog.testing.capture_logs() as logs:
        done(trace, "resp_1", "completed", out_of_band=False, event_id=None)  # raises inside: swallowed
        done(trace, "resp_2", "completed", out_of_band=False, event_id=None)  # skipped from now on
        trace.end("client_closed", {})
    assert logs == [
        {
            "event": "trace_error",
            "hook": "on_response_done",
            "error": "RuntimeError('exporter bug')",
            "log_level": "error",
        }
    ]
    assert exporter.get_finished_spans() == ()  # the session span is left unended, never exported

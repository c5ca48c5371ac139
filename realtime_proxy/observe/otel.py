"""OpenTelemetry traces of Realtime sessions (the `otel` extra): one span per session, one child span
per response from the client's `response.create` to the `response.done` it sees.

Attributes follow the GenAI semantic conventions (`gen_ai.*`) where they define one, else
`realtime_proxy.*`. Rewrites, refusals and retry attempts are span events. Only names, ids, counts,
timings and rule/error codes go into a span: never event payloads (audio, text, instructions) or
handshake headers, which is why rewrite events carry the field path but not its before/after values.

Response spans are written when the response is over, with its real start and end times: a retried
out-of-band response is one span (the client saw one response) that starts at the client's create.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from realtime_proxy import __version__
from realtime_proxy.core.actions import FirstDelta, Refusal, ResponseDone, RetryAttempt, RetryOutcome, Rewrite
from realtime_proxy.observe.otel_live import LiveTraceHooks, never_raises

SYSTEM = "openai"
OPERATION = "chat"  # a Realtime response is a conversational generation (GenAI operation "chat")
_PENDING_LIMIT = 256  # client events whose rewrites wait for their response (bounded)
Attributes = dict[str, Any]
log = structlog.get_logger("proxy.otel")


class Tracing:
    """The process's tracer provider; `session(...)` starts one session's trace."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("realtime_repair_proxy", __version__)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Tracing:
        # Resource.create reads OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES; the exporter reads the
        # OTEL_EXPORTER_OTLP_* endpoint, headers, timeout and compression itself.
        defaults = {} if environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: "realtime-repair-proxy"}
        provider = TracerProvider(resource=Resource.create(defaults))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        return cls(provider)

    def session(
        self,
        *,
        session_id: str,
        model: str | None,
        traceparent: str | None,
        tracestate: str | None,
        live: bool = False,
    ) -> SessionTrace:
        carrier = {k: v for k, v in (("traceparent", traceparent), ("tracestate", tracestate)) if v}
        parent = TraceContextTextMapPropagator().extract(carrier) if carrier else None
        kind = "live_session" if live else "realtime_session"
        return SessionTrace(self.tracer, session_id=session_id, model=model, parent=parent, kind=kind)

    def shutdown(self) -> None:
        self.provider.shutdown()  # flushes what the batch processor still holds


@dataclass
class _Response:
    """A finished response waiting to be written as a span (held while a retry may follow)."""

    status: str
    start_ns: int
    end_ns: int
    attributes: Attributes
    events: list[tuple[str, Attributes, int]] = field(default_factory=list)


class SessionTrace(LiveTraceHooks):
    """Fed by the session's observer, one call per observation it cares about."""

    def __init__(
        self,
        tracer: Tracer,
        *,
        session_id: str,
        model: str | None,
        parent: Context | None,
        kind: str = "realtime_session",
    ) -> None:
        self.tracer = tracer
        self.model = model
        base = {"gen_ai.provider.name": SYSTEM, "gen_ai.system": SYSTEM}
        self.base: Attributes = {**base, **({"gen_ai.request.model": model} if model else {})}
        self.span: Span = tracer.start_span(
            f"{kind} {model or ''}".strip(),
            context=parent,
            kind=SpanKind.SERVER,
            attributes={**self.base, "realtime_proxy.session_id": session_id},
        )
        self.context = set_span_in_context(self.span)
        self.broken = False
        self._pending: OrderedDict[str | None, list[tuple[str, Attributes, int]]] = OrderedDict()
        self._first_delta: dict[str, float] = {}
        self._held: dict[str, _Response] = {}  # out-of-band responses waiting for their retry outcome
        self._failed: dict[str | None, list[_Response]] = {}  # failed attempts by client event id

    # -- hooks: one per observation the trace uses ---------------------------------------------

    @never_raises
    def on_rewrite(self, item: Rewrite) -> None:
        attributes: Attributes = {
            "realtime_proxy.rewrite.rule": item.rule,
            "realtime_proxy.rewrite.path": item.path,
            "realtime_proxy.rewrite.lossless": item.lossless,
            "realtime_proxy.rewrite.applied": item.applied,
            "realtime_proxy.rewrite.via": item.via,
            "realtime_proxy.rewrite.count": item.count,
            **_event_type(item.event_type),
        }
        if item.event_type != "response.create" or item.client_event_id is None:
            self.span.add_event("realtime_proxy.rewrite", attributes)  # not about a response
            return
        pending = self._pending.setdefault(item.client_event_id, [])
        pending.append(("realtime_proxy.rewrite", attributes, time.time_ns()))
        while len(self._pending) > _PENDING_LIMIT:
            self._pending.popitem(last=False)

    @never_raises
    def on_refusal(self, item: Refusal) -> None:
        attributes = {"realtime_proxy.refusal.rule": item.rule, "realtime_proxy.refusal.code": item.code}
        self.span.add_event("realtime_proxy.refusal", {**attributes, **_event_type(item.event_type)})

    @never_raises
    def on_first_delta(self, item: FirstDelta) -> None:
        if item.response_id is not None:
            self._first_delta[item.response_id] = item.seconds

    @never_raises
    def on_response_done(self, item: ResponseDone, status: str, cost_usd: float) -> None:
        """`status`: the bounded status the metrics use; `cost_usd`: this response's cost."""
        end = time.time_ns()
        attributes: Attributes = {
            "gen_ai.operation.name": OPERATION,
            "gen_ai.response.finish_reasons": [status],
            "gen_ai.usage.input_tokens": sum(n for d, _, _, n in item.tokens if d == "input"),
            "gen_ai.usage.output_tokens": sum(n for d, _, _, n in item.tokens if d == "output"),
            "realtime_proxy.out_of_band": item.out_of_band,
            "realtime_proxy.cost_usd": cost_usd,
        }
        if item.response_id is not None:
            attributes["gen_ai.response.id"] = item.response_id
            if item.response_id in self._first_delta:
                attributes["realtime_proxy.time_to_first_delta_s"] = self._first_delta.pop(item.response_id)
        if isinstance(item.error_type, str):
            attributes["error.type"] = item.error_type
        start = end - int((item.seconds or 0.0) * 1e9)
        response = _Response(status, start, end, attributes)
        response.events = self._pending.pop(item.client_event_id, []) if item.client_event_id else []
        if (item.out_of_band or status == "failed") and item.response_id is not None:
            # It may be retried (a failed done need not say it was out-of-band): wait for the outcome.
            self._held[item.response_id] = response
        else:
            self._write(response)

    @never_raises
    def on_retry_attempt(self, item: RetryAttempt) -> None:
        failed = self._held.pop(item.response_id, None) if item.response_id else None
        if failed is None:
            return
        attributes: Attributes = {
            "realtime_proxy.retry.attempt": item.attempt,
            "realtime_proxy.retry.delay_s": item.delay,
            "realtime_proxy.retry.failed_response_id": item.response_id or "",
        }
        if isinstance(item.error_type, str):
            attributes["error.type"] = item.error_type
        if isinstance(item.error_code, str):
            attributes["realtime_proxy.retry.error_code"] = item.error_code
        failed.events.append(("realtime_proxy.retry_attempt", attributes, time.time_ns()))
        self._failed.setdefault(item.client_event_id, []).append(failed)

    @never_raises
    def on_retry_outcome(self, item: RetryOutcome) -> None:
        failed = self._failed.pop(item.client_event_id, [])
        final = self._held.pop(item.response_id, None) if item.response_id else None
        if final is None and failed:
            final = failed.pop()  # e.g. cancelled in backoff: the last attempt is what the client saw
        if final is None:
            return
        final.attributes["realtime_proxy.retry.attempts"] = item.attempts
        final.attributes["realtime_proxy.retry.outcome"] = item.outcome
        if failed:
            final.start_ns = failed[0].start_ns  # the client's create, before the first attempt
            final.events = [event for attempt in failed for event in attempt.events] + final.events
        self._write(final)

    @never_raises
    def on_resumption(self, details: dict[str, Any]) -> None:
        """One span per resumption of the session on a new upstream connection (issue 25)."""
        now = time.time_ns()
        start = now - int(float(details.get("resume_s", 0.0)) * 1e9)
        attributes: Attributes = {f"realtime_proxy.resume.{k}": v for k, v in details.items()}
        span = self.tracer.start_span(
            "realtime_resume",
            context=self.context,
            kind=SpanKind.CLIENT,
            start_time=start,
            attributes=attributes,
        )
        if details.get("outcome") != "resumed":
            span.set_status(Status(StatusCode.ERROR, str(details.get("outcome"))))
        span.end(end_time=now)

    @never_raises
    def end(self, outcome: str, summary: Attributes) -> None:
        for response in [*self._held.values(), *(r for rs in self._failed.values() for r in rs)]:
            self._write(response)
        for events in self._pending.values():
            for name, attributes, at in events:
                self.span.add_event(name, attributes, timestamp=at)
        self.span.set_attributes({"realtime_proxy.outcome": outcome, **summary})
        self.span.end()

    # -- helpers -------------------------------------------------------------------------------

    def _write(self, response: _Response) -> None:
        rules = [
            a["realtime_proxy.rewrite.rule"] for n, a, _ in response.events if n == "realtime_proxy.rewrite"
        ]
        span = self.tracer.start_span(
            f"{OPERATION} {self.model or ''}".strip(),
            context=self.context,
            kind=SpanKind.CLIENT,
            start_time=response.start_ns,
            attributes={**self.base, **response.attributes, **_rules(rules)},
        )
        for name, attributes, at in response.events:
            span.add_event(name, attributes, timestamp=at)
        if response.status in ("failed", "incomplete"):
            span.set_status(Status(StatusCode.ERROR, response.status))
        span.end(end_time=response.end_ns)


def _rules(rules: list[str]) -> Attributes:
    """The rules that rewrote a request, in order (each one's details are its span event)."""
    return {"realtime_proxy.rewrite.rules": rules} if rules else {}


def _event_type(event_type: str | None) -> Attributes:
    return {"realtime_proxy.event_type": event_type} if event_type else {}

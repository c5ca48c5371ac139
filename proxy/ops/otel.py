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

from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from proxy import __version__

SYSTEM = "openai"
OPERATION = "chat"  # a Realtime response is a conversational generation (GenAI operation "chat")
_PENDING_LIMIT = 256  # client events whose rewrites wait for their response (bounded)
Attributes = dict[str, Any]


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
        self, *, session_id: str, model: str | None, traceparent: str | None, tracestate: str | None
    ) -> SessionTrace:
        carrier = {k: v for k, v in (("traceparent", traceparent), ("tracestate", tracestate)) if v}
        parent = TraceContextTextMapPropagator().extract(carrier) if carrier else None
        return SessionTrace(self.tracer, session_id=session_id, model=model, parent=parent)

    def shutdown(self) -> None:
        self.provider.shutdown()  # flushes what the batch processor still holds


@dataclass
class _Response:
    response_id: str | None
    client_event_id: str | None
    status: str
    start_ns: int
    end_ns: int
    out_of_band: bool
    attributes: Attributes
    events: list[tuple[str, Attributes, int]] = field(default_factory=list)


class SessionTrace:
    """Fed by the session's observer, one call per observation it cares about."""

    def __init__(self, tracer: Tracer, *, session_id: str, model: str | None, parent: Context | None) -> None:
        self.tracer = tracer
        self.model = model
        base = {"gen_ai.provider.name": SYSTEM, "gen_ai.system": SYSTEM}
        self.base: Attributes = {**base, **({"gen_ai.request.model": model} if model else {})}
        self.span: Span = tracer.start_span(
            f"realtime_session {model or ''}".strip(),
            context=parent,
            kind=SpanKind.SERVER,
            attributes={**self.base, "realtime_proxy.session_id": session_id},
        )
        self.context = set_span_in_context(self.span)
        self._pending: OrderedDict[str | None, list[tuple[str, Attributes, int]]] = OrderedDict()
        self._first_delta: dict[str, float] = {}
        self._held: dict[str, _Response] = {}  # out-of-band responses waiting for their retry outcome
        self._failed: dict[str | None, list[_Response]] = {}  # failed attempts by client event id

    # -- hooks ---------------------------------------------------------------------------------

    def on_rewrite(self, client_event_id: str | None, event_type: str | None, **fields: Any) -> None:
        keys = ("rule", "path", "lossless", "applied", "via", "count")
        attributes = {f"realtime_proxy.rewrite.{k}": fields[k] for k in keys if fields.get(k) is not None}
        self._event(client_event_id, event_type, "realtime_proxy.rewrite", attributes)

    def on_refusal(self, client_event_id: str | None, event_type: str | None, rule: str, code: str) -> None:
        attributes = {"realtime_proxy.refusal.rule": rule, "realtime_proxy.refusal.code": code}
        self.span.add_event("realtime_proxy.refusal", {**attributes, **_event_type(event_type)})

    def on_first_delta(self, response_id: str | None, seconds: float) -> None:
        if response_id is not None:
            self._first_delta[response_id] = seconds

    def on_response_done(
        self,
        *,
        response_id: str | None,
        client_event_id: str | None,
        status: str,
        error_type: Any,
        seconds: float | None,
        out_of_band: bool,
        tokens: list[tuple[str, str, bool, int]],
        cost_usd: float,
    ) -> None:
        end = time.time_ns()
        attributes: Attributes = {
            "gen_ai.operation.name": OPERATION,
            "gen_ai.response.finish_reasons": [status],
            "gen_ai.usage.input_tokens": sum(n for d, _, _, n in tokens if d == "input"),
            "gen_ai.usage.output_tokens": sum(n for d, _, _, n in tokens if d == "output"),
            "realtime_proxy.out_of_band": out_of_band,
            "realtime_proxy.cost_usd": cost_usd,
        }
        if response_id is not None:
            attributes["gen_ai.response.id"] = response_id
            if response_id in self._first_delta:
                attributes["realtime_proxy.time_to_first_delta_s"] = self._first_delta.pop(response_id)
        if isinstance(error_type, str):
            attributes["error.type"] = error_type
        start = end - int((seconds or 0.0) * 1e9)
        response = _Response(response_id, client_event_id, status, start, end, out_of_band, attributes)
        response.events = self._pending.pop(client_event_id, []) if client_event_id else []
        if (out_of_band or status == "failed") and response_id is not None:
            # It may be retried (a failed done need not say it was out-of-band): wait for the outcome.
            self._held[response_id] = response
        else:
            self._write(response)

    def on_retry_attempt(
        self,
        *,
        attempt: int,
        delay: float,
        response_id: str | None,
        client_event_id: str | None,
        error_type: Any,
        error_code: Any,
    ) -> None:
        failed = self._held.pop(response_id, None) if response_id else None
        if failed is None:
            return
        failed.events.append(
            (
                "realtime_proxy.retry_attempt",
                {
                    "realtime_proxy.retry.attempt": attempt,
                    "realtime_proxy.retry.delay_s": delay,
                    "realtime_proxy.retry.failed_response_id": response_id or "",
                    **({"error.type": error_type} if isinstance(error_type, str) else {}),
                    **(
                        {"realtime_proxy.retry.error_code": error_code} if isinstance(error_code, str) else {}
                    ),
                },
                time.time_ns(),
            )
        )
        self._failed.setdefault(client_event_id, []).append(failed)

    def on_retry_outcome(
        self, *, outcome: str, attempts: int, response_id: str | None, client_event_id: str | None
    ) -> None:
        failed = self._failed.pop(client_event_id, [])
        final = self._held.pop(response_id, None) if response_id else None
        if final is None and failed:
            final = failed.pop()
        if final is None:
            return
        final.attributes["realtime_proxy.retry.attempts"] = attempts
        final.attributes["realtime_proxy.retry.outcome"] = outcome
        if failed:
            final.start_ns = failed[0].start_ns  # the client's create, before the first attempt
            final.events = [event for attempt in failed for event in attempt.events] + final.events
        self._write(final)

    def end(self, outcome: str, summary: Attributes) -> None:
        for response in [*self._held.values(), *(r for rs in self._failed.values() for r in rs)]:
            self._write(response)
        for events in self._pending.values():
            for name, attributes, at in events:
                self.span.add_event(name, attributes, timestamp=at)
        self.span.set_attributes({"realtime_proxy.outcome": outcome, **summary})
        self.span.end()

    # -- helpers -------------------------------------------------------------------------------

    def _event(
        self, client_event_id: str | None, event_type: str | None, name: str, attributes: Attributes
    ) -> None:
        attributes = {**attributes, **_event_type(event_type)}
        if event_type != "response.create" or client_event_id is None:
            self.span.add_event(name, attributes)  # not about a response: the session's event
            return
        self._pending.setdefault(client_event_id, []).append((name, attributes, time.time_ns()))
        while len(self._pending) > _PENDING_LIMIT:
            self._pending.popitem(last=False)

    def _write(self, response: _Response) -> None:
        span = self.tracer.start_span(
            f"{OPERATION} {self.model or ''}".strip(),
            context=self.context,
            kind=SpanKind.CLIENT,
            start_time=response.start_ns,
            attributes={**self.base, **response.attributes},
        )
        for name, attributes, at in response.events:
            span.add_event(name, attributes, timestamp=at)
        if response.status in ("failed", "incomplete"):
            span.set_status(Status(StatusCode.ERROR, response.status))
        span.end(end_time=response.end_ns)


def _event_type(event_type: str | None) -> Attributes:
    return {"realtime_proxy.event_type": event_type} if event_type else {}

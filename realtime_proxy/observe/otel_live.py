"""The Live hooks of a session's trace (mixed into `observe.otel.SessionTrace`): the session span is
named `live_session <model>`, each delegated Responses response becomes a child span (GenAI
attributes, `realtime_proxy.live.delegation_id` to group them), first deltas and errors are span
events. Ids, counts, timings and codes only: never transcripts or audio."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import structlog
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from realtime_proxy.core.live_observations import (
    LiveDelegatedResponse,
    LiveError,
    LiveFirstDelta,
    LiveStarted,
)

log = structlog.get_logger("proxy.otel")
OPERATION = "chat"


def never_raises(hook: Callable[..., None]) -> Callable[..., None]:
    """First, do no harm: a tracing bug costs this session its trace, never the session itself
    (every hook of `otel.SessionTrace`, the Live ones here included)."""

    @functools.wraps(hook)
    def guarded(self: Any, *args: Any) -> None:
        if self.broken:
            return
        try:
            hook(self, *args)
        except Exception as exc:
            self.broken = True
            log.error("trace_error", hook=hook.__name__, error=repr(exc))

    return guarded


class LiveTraceHooks:
    tracer: Tracer
    span: Span
    context: Context
    model: str | None
    base: dict[str, Any]
    broken: bool

    @never_raises
    def on_live_started(self, item: LiveStarted) -> None:
        if item.model:
            self.model = item.model
            self.base["gen_ai.request.model"] = item.model
            self.span.update_name(f"live_session {item.model}")
            self.span.set_attribute("gen_ai.request.model", item.model)
        if item.live_session_id:
            self.span.set_attribute("gen_ai.conversation.id", item.live_session_id)

    @never_raises
    def on_live_first_delta(self, item: LiveFirstDelta) -> None:
        attributes: dict[str, Any] = {
            "realtime_proxy.live.trigger": item.trigger,
            "realtime_proxy.live.modality": item.modality,
            "realtime_proxy.time_to_first_delta_s": item.seconds,
        }
        self.span.add_event("realtime_proxy.live.first_delta", attributes)

    @never_raises
    def on_live_error(self, item: LiveError) -> None:
        attributes = {
            "error.type": item.error_type or "other",
            "realtime_proxy.live.error_code": item.code or "",
        }
        self.span.add_event("realtime_proxy.live.error", attributes)

    @never_raises
    def on_live_delegated_response(
        self, item: LiveDelegatedResponse, status: str, live_model: str | None
    ) -> None:
        end = time.time_ns()
        start = end - int((item.seconds or 0.0) * 1e9)
        attributes: dict[str, Any] = {
            **self.base,
            "gen_ai.operation.name": OPERATION,
            "gen_ai.response.finish_reasons": [status],
            "gen_ai.usage.input_tokens": item.input_tokens,
            "gen_ai.usage.output_tokens": item.output_tokens,
        }
        if item.model:
            attributes["gen_ai.response.model"] = item.model
        if item.response_id:
            attributes["gen_ai.response.id"] = item.response_id
        if item.delegation_id:
            attributes["realtime_proxy.live.delegation_id"] = item.delegation_id
        if live_model:
            attributes["realtime_proxy.live.model"] = live_model
        span = self.tracer.start_span(
            f"{OPERATION} {item.model or ''}".strip(),
            context=self.context,
            kind=SpanKind.CLIENT,
            start_time=start,
            attributes=attributes,
        )
        if status in ("failed", "incomplete"):
            span.set_status(Status(StatusCode.ERROR, status))
        span.end(end_time=end)

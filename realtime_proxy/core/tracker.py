"""The tracking stage: per-response timing, status and usage, and rate limits, for metrics.

It only observes: it never changes or holds a frame. Which create a response answers, and when
it was sent, is the ledger's (realtime_proxy.core.responses), read as the frozen `Response`
the pipeline bound before this stage runs. Pure: time comes in as `now`.
"""

from __future__ import annotations

from typing import Any

from realtime_proxy.core.actions import FirstDelta, RateLimits, ResponseDone
from realtime_proxy.core.events import sniff_string_field
from realtime_proxy.core.responses import Ledger, Response
from realtime_proxy.core.stage import BaseStage, Message, StageAction

_AWAITING = 64  # responses awaiting their first delta, the oldest dropped beyond

FIRST_DELTA_MODALITY = {
    "response.output_audio.delta": "audio",
    "response.output_text.delta": "text",
    "response.function_call_arguments.delta": "function_call",
}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and value > 0 else 0


def token_counts(usage: Any) -> list[tuple[str, str, bool, int]]:
    """(direction, modality, cached, tokens) rows from a response.done `usage` block."""
    if not isinstance(usage, dict):
        return []
    rows: list[tuple[str, str, bool, int]] = []
    inputs = usage.get("input_token_details")
    inputs = inputs if isinstance(inputs, dict) else {}
    cached = inputs.get("cached_tokens_details")
    cached = cached if isinstance(cached, dict) else {}
    for modality in ("text", "audio", "image"):
        total = _int(inputs.get(f"{modality}_tokens"))
        hit = min(_int(cached.get(f"{modality}_tokens")), total)
        rows.append(("input", modality, False, total - hit))
        rows.append(("input", modality, True, hit))
    outputs = usage.get("output_token_details")
    outputs = outputs if isinstance(outputs, dict) else {}
    for modality in ("text", "audio"):
        rows.append(("output", modality, False, _int(outputs.get(f"{modality}_tokens"))))
    return [row for row in rows if row[3]]


def response_done(event: dict[str, Any], about: Response | None, now: float) -> ResponseDone:
    """The observation of a `response.done`; `about` is the ledger's record of that response."""
    response = event.get("response")
    response = response if isinstance(response, dict) else {}
    details = response.get("status_details")
    details = details if isinstance(details, dict) else {}
    error = details.get("error")
    error = error if isinstance(error, dict) else {}
    reason = details.get("reason")  # e.g. client_cancelled, turn_detected
    started = about.started_at if about is not None else None
    return ResponseDone(
        response_id=response.get("id") if isinstance(response.get("id"), str) else None,
        status=response.get("status") if isinstance(response.get("status"), str) else None,
        error_type=error.get("type"),
        error_code=error.get("code"),
        seconds=None if started is None else now - started,
        out_of_band=not about.in_band if about is not None else response.get("conversation_id", "") is None,
        tokens=token_counts(response.get("usage")),
        client_event_id=about.request.event_id if about is not None and about.request else None,
        reason=reason if isinstance(reason, str) else None,
    )


class TrackingStage(BaseStage):
    __slots__ = ("_awaiting", "ledger")
    name = "tracking"
    server_types = frozenset({"response.created", "response.done", "rate_limits.updated"})
    server_sees = frozenset(FIRST_DELTA_MODALITY)
    server_fast = server_sees

    def fast_server(self, frame: str, event_type: str, now: float) -> list[StageAction] | None:
        return self._first_delta(event_type, frame, now) if self._awaiting else None

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        # Response id -> when it started, until its first delta; made with the first (an empty dict
        # in every idle session cost 64 B: issue 26).
        self._awaiting: dict[str, float] | None = None

    def on_server(self, message: Message, now: float) -> list[StageAction]:
        event_type, event = message.type, message.event
        if event_type in FIRST_DELTA_MODALITY:
            return self._first_delta(event_type, message.frame, now) if self._awaiting else []
        about = self.ledger.about
        if event_type == "response.created":
            started = about.started_at if about is not None else None
            if about is not None and started is not None:
                if self._awaiting is None:
                    self._awaiting = {}
                self._awaiting[about.response_id] = started
                if len(self._awaiting) > _AWAITING:
                    del self._awaiting[next(iter(self._awaiting))]
        elif event is None:
            return []
        elif event_type == "response.done":
            if about is not None and self._awaiting is not None:
                self._awaiting.pop(about.response_id, None)
            return [response_done(event, about, now)]
        elif event_type == "rate_limits.updated":
            return [RateLimits(event.get("rate_limits"))]
        return []

    def _first_delta(self, event_type: str, frame: str, now: float) -> list[StageAction]:
        response_id = sniff_string_field(frame, "response_id")
        awaiting = self._awaiting
        started = (
            awaiting.pop(response_id, None) if awaiting is not None and response_id is not None else None
        )
        if started is None:
            return []
        return [FirstDelta(response_id, FIRST_DELTA_MODALITY[event_type], now - started)]

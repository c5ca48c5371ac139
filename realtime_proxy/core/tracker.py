"""Per-response observations for metrics: time to first delta, duration, status and token usage.

Pure: the session core feeds it events and `now`, it answers with observations.
"""

from __future__ import annotations

from typing import Any

from realtime_proxy.core.actions import FirstDelta, Frame, ResponseDone
from realtime_proxy.core.events import sniff_string_field

_PENDING = 64  # creates awaiting their response.created, the oldest dropped beyond

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


class ResponseTracker:
    """Matches response.create to response.created in order (the protocol has no request id for
    responses), then times each response's first delta and its response.done."""

    def __init__(self) -> None:
        # At most _PENDING entries; a list, not a deque: a deque costs 600 B per idle session.
        self._pending_creates: list[tuple[str | None, float]] = []
        self._started: dict[str, tuple[str | None, float]] = {}  # response id -> (create's event id, time)
        self._awaiting_delta: set[str] = set()

    @property
    def awaiting_delta(self) -> bool:
        return bool(self._awaiting_delta)

    def on_client_create(self, event_id: str | None, now: float) -> None:
        self._pending_creates.append((event_id, now))
        if len(self._pending_creates) > _PENDING:
            del self._pending_creates[0]

    def on_client_create_rejected(self, event_id: str | None) -> None:
        """An upstream error named this response.create: it will get no response.created."""
        for index, (pending_id, _) in enumerate(self._pending_creates):
            if event_id is not None and pending_id == event_id:
                del self._pending_creates[index]
                return

    def on_created(self, response_id: str, now: float) -> None:
        self._started[response_id] = self._pending_creates.pop(0) if self._pending_creates else (None, now)
        self._awaiting_delta.add(response_id)

    def on_delta(self, event_type: str, frame: Frame, now: float) -> FirstDelta | None:
        modality = FIRST_DELTA_MODALITY.get(event_type)
        if modality is None or not isinstance(frame, str):
            return None
        response_id = sniff_string_field(frame, "response_id")
        if response_id not in self._awaiting_delta:
            return None
        self._awaiting_delta.discard(response_id)
        seconds = now - self._started.get(response_id, (None, now))[1]
        return FirstDelta(response_id, modality, seconds)

    def on_done(self, event: dict[str, Any], now: float) -> ResponseDone:
        response = event.get("response")
        response = response if isinstance(response, dict) else {}
        response_id = response.get("id") if isinstance(response.get("id"), str) else None
        client_event_id, started = (
            self._started.pop(response_id, (None, None)) if response_id else (None, None)
        )
        self._awaiting_delta.discard(response_id or "")
        details = response.get("status_details")
        details = details if isinstance(details, dict) else None
        error = details.get("error") if details else None
        error = error if isinstance(error, dict) else {}
        return ResponseDone(
            response_id=response_id,
            status=response.get("status") if isinstance(response.get("status"), str) else None,
            error_type=error.get("type"),
            error_code=error.get("code"),
            seconds=None if started is None else now - started,
            out_of_band=response.get("conversation_id", "") is None,
            tokens=token_counts(response.get("usage")),
            client_event_id=client_event_id,
            reason=reason if isinstance(reason := (details or {}).get("reason"), str) else None,
        )

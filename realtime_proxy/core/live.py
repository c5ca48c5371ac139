"""The Live API's core (`/v1/live/sessions`): relayed untouched, observed, optionally repaired.

Live is not the Realtime API: it never sends `response.done`, so no Realtime stage (turn-taking,
retry, response tracking) may see it: a held `response.create` would wait forever. A Live session
runs its own short pipeline instead:

    client: [start gate], repair (rules scoped `live` only), live observer  -> upstream
    server: [start gate], live observer                                     -> client

The observer only reads (never changes or holds a frame) and reports `core.live_observations`
observations: usage and cost, time to the first output delta, errors, delegated responses. The
start gate (rule `live_hold_until_started`, off by default) holds commands a client sends between
`session.start` and `session.started`, which the SDK's types say to wait for.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Any

from realtime_proxy.core.live_gate import LiveStartGate
from realtime_proxy.core.live_observations import (
    OUTPUT_DELTAS,
    RESPONSE_ENDS,
    LiveDelegatedResponse,
    LiveDelegation,
    LiveError,
    LiveFirstDelta,
    LiveStarted,
    LiveUsage,
)
from realtime_proxy.core.stage import BaseStage, Message, StageAction

_MEMORY = 256  # delegated responses in flight remembered (bounded: the client cannot grow it)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


class LiveObserverStage(BaseStage):
    """Reads a Live session's traffic for metrics and traces; never changes a frame."""

    name = "live_observer"
    client_types = frozenset({"session.start", "response.create"})
    server_types = frozenset(
        {
            "session.started",
            "session.usage.updated",
            "session.delegation.created",
            "response.event",
            "error",
        }
    )
    # Seen unparsed: audio deltas are the bulk of the traffic.
    server_sees = frozenset({*OUTPUT_DELTAS, "session.input_transcript.delta"})

    def __init__(self) -> None:
        self.model: str | None = None
        # response.creates not yet answered by a delegated delta, oldest first (bounded).
        self._creates: deque[tuple[float, str | None]] = deque(maxlen=_MEMORY)
        self._speech: float | None = None  # the latest user transcript fragment not yet answered
        self._answered: OrderedDict[str, None] = OrderedDict()  # delegations whose first delta was seen
        self._active = 0.0
        self._paused = 0.0
        self._started: OrderedDict[str, float] = OrderedDict()  # delegated response key -> start

    def on_client(self, message: Message, now: float) -> list[StageAction]:
        event = message.event
        if event is None:
            return []
        if message.type == "session.start":
            session = event.get("session")
            if isinstance(session, dict) and self.model is None:
                self.model = _str(session.get("model"))
        elif message.type == "response.create":
            self._creates.append((now, _str(event.get("event_id"))))
        return []

    def on_server(self, message: Message, now: float) -> list[StageAction]:
        kind = message.type
        if kind in OUTPUT_DELTAS:
            if self._speech is None:
                return []
            since, self._speech = self._speech, None
            return [LiveFirstDelta("user_speech", OUTPUT_DELTAS[kind], max(0.0, now - since))]
        if kind == "session.input_transcript.delta":
            self._speech = now  # the latest fragment: the end of the user's speech so far
            return []
        event = message.event
        if event is None:
            return []
        if kind == "response.event":
            return self._response_event(event, now)
        if kind == "session.started":
            session = event.get("session")
            session = session if isinstance(session, dict) else {}
            self.model = _str(session.get("model")) or self.model
            return [LiveStarted(_str(session.get("id")), self.model)]
        if kind == "session.usage.updated":
            return self._usage(event)
        if kind == "session.delegation.created":
            delegation = event.get("delegation")
            delegation = delegation if isinstance(delegation, dict) else {}
            delegation_id = _str(delegation.get("id"))
            if delegation_id is not None:
                self._remember(delegation_id, now)
            return [
                LiveDelegation(
                    delegation_id, _str(delegation.get("target")), _str(delegation.get("response_id"))
                )
            ]
        if kind == "error":
            error = event.get("error")
            error = error if isinstance(error, dict) else {"message": error}
            client_event_id = _str(error.get("client_event_id")) or _str(event.get("client_event_id"))
            refused = [c for c in self._creates if c[1] is not None and c[1] == client_event_id]
            for create in refused:  # a refused response.create will not be answered
                self._creates.remove(create)
            return [
                LiveError(
                    _str(error.get("type")),
                    _str(error.get("code")),
                    _str(error.get("message")),
                    _str(error.get("param")),
                    client_event_id,
                )
            ]
        return []

    def _delegated_delta(self, delegation_id: str | None, now: float) -> list[StageAction]:
        """The first delta of a delegation answers the oldest unanswered response.create."""
        if delegation_id is None or delegation_id in self._answered or not self._creates:
            return []
        self._answered[delegation_id] = None
        while len(self._answered) > _MEMORY:
            self._answered.popitem(last=False)
        since, client_event_id = self._creates.popleft()
        return [LiveFirstDelta("response_create", "delegated", max(0.0, now - since), client_event_id)]

    def _usage(self, event: dict[str, Any]) -> list[StageAction]:
        usage = event.get("usage")
        usage = usage if isinstance(usage, dict) else {}
        seconds = _num(usage.get("seconds"))
        # Cumulative: the active/paused breakdown when given (WebRTC), else every second is active.
        paused = _num(usage.get("paused_seconds"))
        active = _num(usage.get("active_seconds")) if "active_seconds" in usage else seconds - paused
        added_active, added_paused = max(0.0, active - self._active), max(0.0, paused - self._paused)
        self._active, self._paused = max(self._active, active), max(self._paused, paused)
        window = event.get("context_window")
        ratio = window.get("usage_ratio") if isinstance(window, dict) else None
        ratio = float(ratio) if isinstance(ratio, int | float) and not isinstance(ratio, bool) else None
        return [LiveUsage(self.model, seconds, added_active, added_paused, ratio)]

    def _response_event(self, event: dict[str, Any], now: float) -> list[StageAction]:
        nested = event.get("event")
        if not isinstance(nested, dict):
            return []
        nested_type = _str(nested.get("type")) or ""
        delegation_id = _str(event.get("delegation_id"))
        response = nested.get("response")
        response = response if isinstance(response, dict) else {}
        response_id = _str(response.get("id"))
        key = delegation_id or response_id
        actions: list[StageAction] = []
        if nested_type.endswith(".delta"):
            actions.extend(self._delegated_delta(delegation_id, now))
        if nested_type == "response.created" and key is not None and key not in self._started:
            self._remember(key, now)
        elif nested_type in RESPONSE_ENDS:
            since = self._started.pop(key, None) if key is not None else None
            usage = response.get("usage")
            usage = usage if isinstance(usage, dict) else {}
            actions.append(
                LiveDelegatedResponse(
                    delegation_id,
                    response_id,
                    _str(response.get("status")) or nested_type.removeprefix("response."),
                    _str(response.get("model")),
                    int(_num(usage.get("input_tokens"))),
                    int(_num(usage.get("output_tokens"))),
                    None if since is None else max(0.0, now - since),
                )
            )
        return actions

    def _remember(self, key: str, now: float) -> None:
        self._started.setdefault(key, now)
        while len(self._started) > _MEMORY:
            self._started.popitem(last=False)


def live_stages(
    repair: BaseStage | None, *, hold_until_started: bool
) -> tuple[tuple[BaseStage, ...], tuple[BaseStage, ...], LiveObserverStage]:
    """The client and server stages of a Live session, in order, and its observer."""
    observer = LiveObserverStage()
    gate = LiveStartGate(apply=hold_until_started)
    client = tuple(s for s in (gate, repair, observer) if s is not None)
    return client, (gate, observer), observer

"""The simulated Live API session (`/v1/live/sessions`), from the SDK's types (`openai/types/live/`).

`session.start` first, answered by `session.started` (commands before it are refused with an
`error` naming their `client_event_id`); Realtime event names are refused with the API's
`invalid_value` listing the supported types (shared/PROTOCOL.md, the Live section);
`response.create` is answered by a delegation (`session.delegation.created`), the delegated
Responses stream wrapped in `response.event` with its `delegation_id`, then spoken output
(`session.output_transcript.delta`, `session.output_audio.delta`) and `session.usage.updated`.
There is no `response.done`: a proxy that waits for one stalls here as it would on the API.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from realtime_proxy.api.errors import LIVE_NOT_STARTED as NOT_STARTED
from realtime_proxy.api.errors import ApiError, error_event
from realtime_proxy.api.errors import live_unsupported as unsupported
from realtime_proxy.api.events import LIVE_CLIENT_EVENTS, LIVE_SIDEBAND_CLIENT_EVENTS

from .ids import new_id

SUPPORTED = LIVE_CLIENT_EVENTS
LIVE_MODELS = ("gpt-live-1", "gpt-live-1.1")
BACKEND_MODEL = "gpt-5.2"  # the fake's delegated Responses model when the session names none
_ACKS = {
    "session.input_audio.mute": "session.input_audio.muted",
    "session.input_audio.unmute": "session.input_audio.unmuted",
    "session.instructions.append": "session.instructions.appended",
    "session.thinking.append": "session.thinking.appended",
    "session.commentary.append": "session.commentary.appended",
}


# A sideband socket (`/live/sessions/{id}/attach`) attaches to a running session: no session.start,
# no input audio; DTMF can be sent (openai/types/live/connect_client_event.py).
SIDEBAND_SUPPORTED = LIVE_SIDEBAND_CLIENT_EVENTS
Socket = str  # "primary" (/live/sessions), "sideband" (/{id}/attach), "fork" (/{id}/fork)


def socket_of(path: str) -> Socket | None:
    """Which Live socket a WebSocket path opens, None when it is not a Live path."""
    trimmed = path.rstrip("/")
    if trimmed.endswith("/live/sessions"):
        return "primary"
    head, _, action = trimmed.rpartition("/")
    if "/live/sessions/" in head and action in ("attach", "fork"):
        return "sideband" if action == "attach" else "fork"
    return None


class FakeLiveSession:
    def __init__(
        self,
        send_text: Callable[[str], Awaitable[None]],
        *,
        delta_interval: float = 0.002,
        seconds_per_response: int = 30,
        start_delay: float = 0.0,
        socket: Socket = "primary",
    ) -> None:
        self.send_text = send_text
        self.socket = socket
        self.supported = SIDEBAND_SUPPORTED if socket == "sideband" else SUPPORTED
        self.delta_interval = delta_interval
        # Billable seconds each answered response adds (a simulated spoken turn): usage and cost
        # tests need seconds that a sub-second test session would not accrue.
        self.seconds_per_response = seconds_per_response
        self.billed = 0
        self.start_delay = start_delay  # seconds from session.start to session.started
        self.starting = False
        self.session: dict[str, Any] | None = None  # the resolved session, once started
        self.started_at = time.monotonic()
        self.close_request: tuple[int, str] | None = None
        self.responses = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """The client speaks first on a primary or fork socket; a sideband attaches to a running session."""
        if self.socket == "sideband":
            await self._started(
                {"id": new_id("live_sess"), "model": LIVE_MODELS[0], "status": "active"}, {}, 0.0
            )

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    async def send(self, event: dict[str, Any]) -> None:
        await self.send_text(orjson.dumps({"event_id": new_id("event"), **event}).decode())

    async def handle(self, frame: str | bytes) -> None:
        try:
            event = orjson.loads(frame)
        except orjson.JSONDecodeError:
            await self._error(
                ApiError("We could not parse the JSON body of your request.", code="invalid_json"), None
            )
            return
        if not isinstance(event, dict):
            await self._error(ApiError("Expected an object.", code="invalid_type"), None)
            return
        client_event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
        try:
            await self._dispatch(event, client_event_id)
        except ApiError as error:
            await self._error(error, client_event_id)

    async def _dispatch(self, event: dict[str, Any], client_event_id: str | None) -> None:
        kind = event.get("type")
        if not isinstance(kind, str) or kind not in self.supported:
            raise unsupported(str(kind), self.supported)
        if kind == "session.start":
            await self._start(event, client_event_id)
            return
        if self.session is None:
            raise ApiError(NOT_STARTED, code="session_not_started")
        reply = {"client_event_id": client_event_id} if client_event_id else {}
        if kind in _ACKS:
            offset = self._offset_ms()
            timeline = {"start_ms": offset, "end_ms": offset} if kind.endswith(".append") else {}
            await self.send({"type": _ACKS[kind], **timeline, **reply})
        elif kind == "session.update":
            await self.send({"type": "session.updated", "session": self.session, **reply})
        elif kind == "response.item.create":
            item = event.get("item")
            if not isinstance(item, dict) or not isinstance(item.get("type"), str):
                raise ApiError("Missing required parameter: 'item.type'.", code="missing_required_parameter")
        elif kind == "response.create":
            self._spawn(self._respond(reply))
        elif kind == "transport.dtmf.send":
            key = event.get("event")
            if not isinstance(key, str) or len(key) != 1 or key not in "0123456789ABCD*#":
                raise ApiError(f"Invalid value: '{key}'.", code="invalid_value", param="event")
            await self.send({"type": "transport.dtmf.sent", "event": key, **reply})
        elif kind == "session.close":
            await self.send(self._closed("close_requested", reply))
            self.close_request = (1000, "")

    async def _start(self, event: dict[str, Any], client_event_id: str | None) -> None:
        if self.session is not None:
            raise ApiError("The session has already started.", code="session_already_started")
        config = event.get("session")
        if self.socket == "fork" and isinstance(config, dict):  # "The model is inherited."
            config = {"model": LIVE_MODELS[0], **config}
        if not isinstance(config, dict) or not isinstance(config.get("model"), str):
            raise ApiError("Missing required parameter: 'session.model'.", code="missing_required_parameter")
        model = config["model"]
        if model not in LIVE_MODELS:
            raise ApiError(f"Invalid model: '{model}'.", code="invalid_model", param="session.model")
        if self.starting:
            raise ApiError("The session is already starting.", code="session_already_started")
        session = {
            **{k: v for k, v in config.items() if k not in ("model",)},
            "id": new_id("live_sess"),
            "model": model,
            "status": "active",
            "expires_at": int(time.time()) + 3600,
        }
        reply = {"client_event_id": client_event_id} if client_event_id else {}
        self.starting = True
        if self.start_delay > 0:  # commands arriving meanwhile are refused (NOT_STARTED)
            self._spawn(self._started(session, reply, self.start_delay))
        else:
            await self._started(session, reply, 0.0)

    async def _started(self, session: dict[str, Any], reply: dict[str, Any], delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        self.session = session
        await self.send({"type": "session.started", "session": session, **reply})
        await self.send({"type": "session.usage.updated", "usage": {"seconds": 0}})

    async def _respond(self, reply: dict[str, Any]) -> None:
        """One delegated response: its Responses stream wrapped in response.event, then speech."""
        self.responses += 1
        self.billed += self.seconds_per_response
        delegation_id, response_id = new_id("dlg"), new_id("resp")
        assert self.session is not None
        delegation = self.session.get("delegation")
        backend = delegation.get("responses") if isinstance(delegation, dict) else None
        model = backend.get("model") if isinstance(backend, dict) else None
        model = model if isinstance(model, str) else BACKEND_MODEL
        await self.send(
            {
                "type": "session.delegation.created",
                "delegation": {
                    "id": delegation_id,
                    "type": "delegation",
                    "target": "responses",
                    "response_id": response_id,
                },
                "offset_ms": self._offset_ms(),
                **reply,
            }
        )
        response = {
            "id": response_id,
            "object": "response",
            "model": model,
            "status": "in_progress",
            "output": [],
        }
        stream: list[dict[str, Any]] = [{"type": "response.created", "response": response}]
        for n, text in enumerate(("Hello ", "from Live.")):
            stream.append({"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0,
                           "content_index": 0, "delta": text, "sequence_number": n + 1})  # fmt: skip
        usage = {"input_tokens": 12, "output_tokens": 4, "total_tokens": 16}
        stream.append(
            {"type": "response.completed", "response": {**response, "status": "completed", "usage": usage}}
        )
        for nested in stream:
            await asyncio.sleep(self.delta_interval)
            await self.send({"type": "response.event", "delegation_id": delegation_id, "event": nested})
        offset = self._offset_ms()
        await self.send(
            {
                "type": "session.output_transcript.delta",
                "delta": "Hello from Live.",
                "start_ms": offset,
                "end_ms": offset + 900,
            }
        )
        await self.send(
            {"type": "session.output_audio.delta", "delta": base64.b64encode(bytes(480)).decode()}
        )
        await self.send({"type": "session.usage.updated", "usage": {"seconds": self._seconds()}})

    def _closed(self, reason: str, reply: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "session.closed",
            "reason": reason,
            "session": self.session,
            "usage": {"seconds": self._seconds()},
            **reply,
        }

    def _offset_ms(self) -> int:
        return int((time.monotonic() - self.started_at) * 1000)

    def _seconds(self) -> int:
        return max(int(time.monotonic() - self.started_at), self.billed)

    async def _error(self, error: ApiError, client_event_id: str | None) -> None:
        await self.send(error_event(error, client_event_id, live=True))

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

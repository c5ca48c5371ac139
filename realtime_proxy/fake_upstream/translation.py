"""The simulated translation session (`/v1/realtime/translations?model=...`).

Shapes from `openai/types/realtime/realtime_translation_*`: the client sends
`session.update` (only `audio.input.noise_reduction`, `audio.input.transcription`,
`audio.output.language`; no `type`, no `model`), `session.input_audio_buffer.append` and
`session.close`; the server answers `session.created` / `session.updated` / `session.closed`
and streams `session.output_audio.delta` / transcript deltas (not simulated: no audio out).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from realtime_proxy.api.errors import (
    ApiError,
    invalid_type,
    invalid_value,
    missing_parameter,
    unknown_parameter,
)
from realtime_proxy.api.events import TRANSLATION_CLIENT_EVENTS

from .ids import new_id

_AUDIO_KEYS = {"input": frozenset({"noise_reduction", "transcription"}), "output": frozenset({"language"})}


def translation_session(model: str) -> dict[str, Any]:
    return {
        "id": new_id("sess"),
        "type": "translation",
        "model": model,
        "expires_at": int(time.time()) + 3600,
        "audio": {"input": {"noise_reduction": None, "transcription": None}, "output": {"language": "en"}},
    }


def check_translation_update(session: object) -> dict[str, Any]:
    if session is None:
        raise missing_parameter("session")
    if not isinstance(session, dict):
        raise invalid_type("session", "an object", session)
    for key in session:
        if key != "audio":  # `type` and `model` are set at creation: unknown parameters here
            raise unknown_parameter(f"session.{key}")
    audio = session.get("audio", {})
    if not isinstance(audio, dict):
        raise invalid_type("session.audio", "an object", audio)
    for side, block in audio.items():
        if side not in _AUDIO_KEYS:
            raise unknown_parameter(f"session.audio.{side}")
        if not isinstance(block, dict):
            raise invalid_type(f"session.audio.{side}", "an object", block)
        for key in block:
            if key not in _AUDIO_KEYS[side]:
                raise unknown_parameter(f"session.audio.{side}.{key}")
    return session


class FakeTranslationSession:
    def __init__(self, send_text: Callable[[str], Awaitable[None]], *, model: str) -> None:
        self._send_text = send_text
        self.session = translation_session(model)
        self.buffer_bytes = 0
        self.close_request: tuple[int, str] | None = None

    async def emit(self, event_type: str, **fields: Any) -> None:
        await self._send_text(
            orjson.dumps({"event_id": new_id("event"), "type": event_type, **fields}).decode()
        )

    async def start(self) -> None:
        await self.emit("session.created", session=self.session)

    async def close(self) -> None:
        return None

    async def handle(self, frame: str | bytes) -> None:
        event_id: str | None = None
        try:
            event = orjson.loads(frame)
            if not isinstance(event, dict):
                raise invalid_type("event", "an object", event)
            event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
            await self._dispatch(event)
        except orjson.JSONDecodeError as exc:
            await self.emit(
                "error", error=ApiError(f"Invalid JSON: {exc.msg}", code="invalid_json").payload(None)
            )
        except ApiError as error:
            await self.emit("error", error=error.payload(event_id))

    async def _dispatch(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "session.update":
            update = check_translation_update(event.get("session"))
            for side, block in update.get("audio", {}).items():
                self.session["audio"][side].update(copy.deepcopy(block))
            await self.emit("session.updated", session=self.session)
        elif kind == "session.input_audio_buffer.append":
            audio = event.get("audio")
            if not isinstance(audio, str):
                raise (
                    missing_parameter("audio") if audio is None else invalid_type("audio", "a string", audio)
                )
            self.buffer_bytes += len(audio) * 3 // 4
        elif kind == "session.close":
            await self.emit("session.closed")
            self.close_request = (1000, "session closed")
        else:
            raise invalid_value("type", kind, TRANSLATION_CLIENT_EVENTS)

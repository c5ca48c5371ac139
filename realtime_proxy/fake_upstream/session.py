"""The simulated Realtime session: validates client events GA-strictly and answers like the API."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson

from realtime_proxy.api.errors import ApiError, error_event, invalid_type, invalid_value, missing_parameter
from realtime_proxy.api.events import REALTIME_CLIENT_EVENTS
from realtime_proxy.api.validation import check_item, check_response_create, check_session_update

from .ids import new_id
from .responses import ResponsePlan, ResponseRun

BETA_DISABLED_MESSAGE = (
    "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API."
)
DEFAULT_INSTRUCTIONS = (
    "Your knowledge cutoff is 2023-10. You are a helpful, witty, and friendly AI. "
    "Act like a human, but remember that you aren't a human."
)
# Bytes per millisecond of input audio, by format type.
BYTES_PER_MS = {"audio/pcm": 48, "audio/pcmu": 8, "audio/pcma": 8}


class Controls(Protocol):
    """The scripting knobs a session reads live from its FakeUpstream."""

    delta_interval: float
    response_delay: float
    parallel_function_calls: int
    echo_audio: bool
    audio_shortfall_ms: int
    keep_client_item_ids: bool

    def take_out_of_band_failure(self) -> tuple[str, str | None] | None: ...
    def take_in_band_failure(self) -> tuple[str, str | None] | None: ...


def default_session(model: str) -> dict[str, Any]:
    pcm = {"type": "audio/pcm", "rate": 24000}
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": new_id("sess"),
        "model": model,
        "output_modalities": ["audio"],
        "instructions": DEFAULT_INSTRUCTIONS,
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "expires_at": int(time.time()) + 3600,
        "audio": {
            "input": {
                "format": dict(pcm),
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": 0.5,
                    "prefix_padding_ms": 300,
                    "silence_duration_ms": 200,
                    "idle_timeout_ms": None,
                    "create_response": True,
                    "interrupt_response": True,
                },
            },
            "output": {"format": dict(pcm), "voice": "marin", "speed": 1.0},
        },
        "include": None,
    }


def transcription_session(model: str) -> dict[str, Any]:
    """The session of a `?intent=transcription` socket: input audio only."""
    realtime = default_session(model)
    return {
        "type": "transcription",
        "object": "realtime.transcription_session",
        "id": realtime["id"],
        "expires_at": realtime["expires_at"],
        "audio": {"input": realtime["audio"]["input"]},
        "include": None,
    }


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> None:
    # Only the audio containers merge; everything else (format, turn_detection, tools...) is replaced.
    for key, value in update.items():
        if (
            key in ("audio", "input", "output")
            and isinstance(value, dict)
            and isinstance(base.get(key), dict)
        ):
            deep_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)


class FakeSession:
    def __init__(
        self,
        controls: Controls,
        send_text: Callable[[str], Awaitable[None]],
        *,
        model: str,
        sideband: bool = False,
        transcription: bool = False,
        model_in_transcription_query: bool = False,
    ) -> None:
        self.controls = controls
        self._send_text = send_text
        self.sideband = sideband
        # `?intent=transcription&model=X` opens a session that refuses its transcription
        # config (livekit/agents-js #1756); the server then closes the socket.
        self.query_model = model if transcription and model_in_transcription_query else None
        self.close_request: tuple[int, str] | None = None
        self.session = transcription_session(model) if transcription else default_session(model)
        self.conversation_id = new_id("conv")
        self.items: list[dict[str, Any]] = []
        self.buffer_bytes = 0
        self.input_audio_ms = 0
        self.last_input_tokens = 0
        self.assistant_audio = False
        self.delivered_ms: dict[str, int] = {}
        self.active: dict[str, ResponseRun] = {}
        self.in_band: ResponseRun | None = None
        self._echo_ids = (new_id("resp"), new_id("item"))
        self._handlers: dict[str, Callable[[dict[str, Any]], Awaitable[None]]] = {
            "session.update": self._session_update,
            "input_audio_buffer.append": self._append,
            "input_audio_buffer.commit": self._commit,
            "input_audio_buffer.clear": self._clear,
            "output_audio_buffer.clear": self._output_clear,
            "conversation.item.create": self._item_create,
            "conversation.item.retrieve": self._item_retrieve,
            "conversation.item.truncate": self._item_truncate,
            "conversation.item.delete": self._item_delete,
            "response.create": self._response_create,
            "response.cancel": self._response_cancel,
        }

    # --- plumbing ------------------------------------------------------------------------------

    async def emit(self, event_type: str, **fields: Any) -> None:
        # Serialised immediately, so later mutation of shared item dicts can't leak into this frame.
        event = {"event_id": new_id("event"), "type": event_type, **fields}
        await self._send_text(orjson.dumps(event).decode())

    async def send_error(self, error: ApiError, client_event_id: str | None) -> None:
        await self._send_text(
            orjson.dumps({"event_id": new_id("event"), **error_event(error, client_event_id)}).decode()
        )

    async def start(self) -> None:
        await self.emit("session.created", session=self.session)

    async def reject_beta(self) -> None:
        await self.send_error(ApiError(BETA_DISABLED_MESSAGE, code="beta_api_shape_disabled"), None)

    async def handle(self, frame: str | bytes) -> None:
        if isinstance(frame, bytes):
            error = ApiError(
                "Invalid JSON: binary frames are not supported; send JSON events as text frames.",
                code="invalid_json",
            )
            await self.send_error(error, None)
            return
        try:
            event = orjson.loads(frame)
        except orjson.JSONDecodeError as exc:
            message = f"Invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            await self.send_error(ApiError(message, code="invalid_json"), None)
            return
        if (
            self.controls.echo_audio
            and isinstance(event, dict)
            and event.get("type") == "input_audio_buffer.append"
        ):
            await self._echo(event)
            return
        event_id = event.get("event_id") if isinstance(event, dict) else None
        event_id = event_id if isinstance(event_id, str) else None
        try:
            await self._dispatch(event)
        except ApiError as error:
            await self.send_error(error, event_id)

    async def _dispatch(self, event: object) -> None:
        if not isinstance(event, dict):
            raise invalid_type("event", "an object", event)
        kind = event.get("type")
        if kind is None:
            raise missing_parameter("type")
        if not isinstance(kind, str):
            raise invalid_type("type", "a string", kind)
        handler = self._handlers.get(kind)
        if handler is None:
            raise invalid_value("type", kind, REALTIME_CLIENT_EVENTS)
        await handler(event)

    async def _echo(self, event: dict[str, Any]) -> None:
        response_id, item_id = self._echo_ids
        await self.emit(
            "response.output_audio.delta",
            response_id=response_id,
            item_id=item_id,
            output_index=0,
            content_index=0,
            delta=event.get("audio", ""),
        )

    async def close(self) -> None:
        tasks = [run.task for run in self.active.values() if run.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- state used by responses ---------------------------------------------------------------

    def add_item(self, item: dict[str, Any], after: str | None = None) -> str | None:
        """Insert into the default conversation; returns the previous item's id."""
        index = len(self.items)
        if after == "root":
            index = 0
        elif after is not None:
            index = self._index(after, "previous_item_id") + 1
        self.items.insert(index, item)
        return self.items[index - 1]["id"] if index > 0 else None

    def audio_delivered(self, item_id: str, ms: int, *, in_band: bool) -> None:
        self.assistant_audio = True
        if in_band:
            # The server's item can be shorter than the audio it sent (pipecat #2106).
            self.delivered_ms[item_id] = max(0, ms - self.controls.audio_shortfall_ms)

    def response_finished(self, run: ResponseRun) -> None:
        self.active.pop(run.id, None)
        if self.in_band is run:
            self.in_band = None

    def _index(self, item_id: object, param: str) -> int:
        for i, item in enumerate(self.items):
            if item["id"] == item_id:
                return i
        raise ApiError(f"Item with item_id '{item_id}' not found.", code="item_not_found", param=param)

    # --- client events -------------------------------------------------------------------------

    async def _session_update(self, event: dict[str, Any]) -> None:
        if self.query_model is not None:
            self.close_request = (4000, "invalid_request_error.invalid_model")
            raise ApiError(
                f'Model "{self.query_model}" is not supported in transcription mode.', code="invalid_model"
            )
        update = check_session_update(event.get("session"), self.session["type"])
        voice = update.get("audio", {}).get("output", {}).get("voice")
        if voice is not None and voice != self.session["audio"]["output"]["voice"] and self.assistant_audio:
            raise ApiError(
                "Cannot update a conversation's voice if assistant audio is present.",
                code="cannot_update_voice",
                param="session.audio.output.voice",
            )
        deep_merge(self.session, update)
        await self.emit("session.updated", session=self.session)

    async def _append(self, event: dict[str, Any]) -> None:
        audio = event.get("audio")
        if audio is None:
            raise missing_parameter("audio")
        if not isinstance(audio, str):
            raise invalid_type("audio", "a string", audio)
        # Decoded size from the base64 length: no need to decode ~50 frames a second.
        self.buffer_bytes += len(audio) * 3 // 4 - audio[-2:].count("=")

    def _buffer_ms(self) -> float:
        fmt = self.session["audio"]["input"]["format"] or {}
        return self.buffer_bytes / BYTES_PER_MS.get(fmt.get("type", "audio/pcm"), 48)

    async def _commit(self, event: dict[str, Any]) -> None:
        ms = self._buffer_ms()
        if ms < 100:
            raise ApiError(
                "Error committing input audio buffer: buffer too small. Expected at least 100ms of "
                f"audio, but buffer only has {ms:.2f}ms of audio.",
                code="input_audio_buffer_commit_empty",
            )
        self.buffer_bytes = 0
        self.input_audio_ms += int(ms)
        item = {
            "id": new_id("item"),
            "type": "message",
            "object": "realtime.item",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        previous = self.add_item(item)
        await self.emit("input_audio_buffer.committed", previous_item_id=previous, item_id=item["id"])
        await self.emit("conversation.item.added", previous_item_id=previous, item=item)
        await self.emit("conversation.item.done", previous_item_id=previous, item=item)

    async def _clear(self, event: dict[str, Any]) -> None:
        self.buffer_bytes = 0
        await self.emit("input_audio_buffer.cleared")

    async def _output_clear(self, event: dict[str, Any]) -> None:
        if not self.sideband:
            raise ApiError(
                "output_audio_buffer.clear is only supported for WebRTC and SIP sessions.",
                code="invalid_value",
                param="type",
            )
        response_id = self.in_band.id if self.in_band else new_id("resp")
        await self.emit("output_audio_buffer.cleared", response_id=response_id)

    async def _item_create(self, event: dict[str, Any]) -> None:
        if "item" not in event:
            raise missing_parameter("item")
        item = copy.deepcopy(check_item(event["item"], "item"))
        if not self.controls.keep_client_item_ids:
            item.pop("id", None)  # a server that names every item itself
        if "id" in item and any(i["id"] == item["id"] for i in self.items):
            raise ApiError(
                f"Item with id '{item['id']}' already exists.", code="item_id_duplicate", param="item.id"
            )
        after = event.get("previous_item_id")
        if after is not None and after != "root":
            self._index(after, "previous_item_id")
        item.setdefault("id", new_id("item"))
        item["object"] = "realtime.item"
        item["status"] = "completed"
        previous = self.add_item(item, after)
        await self.emit("conversation.item.added", previous_item_id=previous, item=item)
        await self.emit("conversation.item.done", previous_item_id=previous, item=item)

    async def _item_retrieve(self, event: dict[str, Any]) -> None:
        item = self.items[self._index(event.get("item_id"), "item_id")]
        await self.emit("conversation.item.retrieved", item=item)

    async def _item_delete(self, event: dict[str, Any]) -> None:
        item = self.items.pop(self._index(event.get("item_id"), "item_id"))
        self.delivered_ms.pop(item["id"], None)
        await self.emit("conversation.item.deleted", item_id=item["id"])

    async def _item_truncate(self, event: dict[str, Any]) -> None:
        for name in ("item_id", "content_index", "audio_end_ms"):
            if name not in event:
                raise missing_parameter(name)
        end_ms = event["audio_end_ms"]
        if not isinstance(end_ms, int) or isinstance(end_ms, bool) or end_ms < 0:
            raise invalid_type("audio_end_ms", "a non-negative integer", end_ms)
        item = self.items[self._index(event["item_id"], "item_id")]
        if item.get("role") != "assistant":
            raise ApiError("Only assistant messages can be truncated.", code="invalid_value", param="item_id")
        if item["id"] not in self.delivered_ms:  # text output, or cancelled before any audio
            raise ApiError(
                "Only model output audio messages can be truncated",
                code="unsupported_content_type",
                param="item_id",
            )
        delivered = self.delivered_ms.get(item["id"], 0)
        if end_ms > delivered:
            raise ApiError(
                f"Audio content of {delivered}ms is already shorter than {end_ms}ms",
                code="item_truncate_invalid_audio_end_ms",
                param="audio_end_ms",
            )
        self.delivered_ms[item["id"]] = end_ms
        for part in item.get("content", []):
            if part.get("type") == "output_audio":
                part["transcript"] = ""  # the API drops the transcript of truncated audio
        await self.emit(
            "conversation.item.truncated",
            item_id=item["id"],
            content_index=event["content_index"],
            audio_end_ms=end_ms,
        )

    async def _response_create(self, event: dict[str, Any]) -> None:
        if self.session["type"] == "transcription":  # wording not verified against the API
            raise ApiError("Transcription sessions do not support responses.", code="invalid_request_error")
        params = check_response_create(event.get("response"))
        in_band = params.get("conversation", "auto") != "none"
        if in_band and self.in_band is not None:
            raise ApiError(
                f"Conversation already has an active response in progress: {self.in_band.id}. "
                "Wait until the response is finished before creating a new one.",
                code="conversation_already_has_active_response",
            )
        run = ResponseRun(self, self._plan(params, in_band))
        self.active[run.id] = run
        if in_band:
            self.in_band = run
        run.task = asyncio.create_task(run.run(), name=f"fake-upstream-{run.id}")

    def _plan(self, params: dict[str, Any], in_band: bool) -> ResponsePlan:
        s = self.session
        tools = params.get("tools", s["tools"]) or []
        choice = params.get("tool_choice", s["tool_choice"])
        failure = self.controls.take_in_band_failure() if in_band else None
        if not in_band:
            failure = self.controls.take_out_of_band_failure()
            if failure is None and isinstance(choice, dict):
                failure = ("server_error", None)  # THE SEED BUG: object tool_choice out-of-band
        functions = [t for t in tools if t.get("type", "function") == "function"]
        calls: list[dict[str, Any]] = []
        if choice == "required" and functions:
            count = max(1, self.controls.parallel_function_calls)
            calls = [functions[i % len(functions)] for i in range(count)]
        elif isinstance(choice, dict) and choice.get("type") == "function":
            calls = [t for t in functions if t.get("name") == choice.get("name")][:1]
        out = s["audio"]["output"]
        requested = params.get("audio", {}).get("output", {})
        return ResponsePlan(
            response_id=new_id("resp"),
            in_band=in_band,
            modalities=list(params.get("output_modalities", s["output_modalities"])),
            max_output_tokens=params.get("max_output_tokens", s["max_output_tokens"]),
            metadata=params.get("metadata"),
            audio_output={
                "format": requested.get("format", out["format"]),
                "voice": requested.get("voice", out["voice"]),
            },
            calls=calls,
            failure=failure,
            input_items=len(params.get("input", [])),
        )

    async def start_response(self) -> None:
        """A response the server starts on its own (server VAD with `create_response`)."""
        await self._response_create({"type": "response.create"})

    async def _response_cancel(self, event: dict[str, Any]) -> None:
        response_id = event.get("response_id")
        run = self.active.get(response_id) if response_id else self.in_band
        # A response exists for cancelling only once `response.created` is out: an early cancel
        # fails and the response plays on (livekit/agents #6223).
        if run is None or not run.started or run.cancel_requested:
            raise ApiError(
                "Cancellation failed: no active response found",
                code="response_cancel_not_active",
            )
        run.cancel_requested = True

"""Per-session facts the repair rules need, tracked from both directions of the relay.

Pure: no I/O, no clocks. The relay calls `observe_client` with what was actually sent upstream
and `observe_server` with what the API sent; audio frames are measured, never parsed."""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar, Final

from realtime_proxy.core.audio_accounting import (
    MAX_TRACKED,
    MIN_BYTES_PER_MS,
    InputBuffer,
    OutputAudio,
    bytes_per_ms,
)
from realtime_proxy.core.context import SessionContext
from realtime_proxy.core.events import sniff_string_field, sniff_type
from realtime_proxy.core.responses import Ledger
from realtime_proxy.core.stage import BaseStage, Message, StageAction

__all__ = ["MIN_BYTES_PER_MS", "SessionState", "SessionStateStage", "b64_span_len", "bytes_per_ms"]
_MAX_TRACKED_ITEMS = MAX_TRACKED
_NOTHING: Final[Mapping[str, Any]] = MappingProxyType({})  # one read-only empty table for every session


def b64_span_len(frame: str, field: str = "delta") -> int:
    """Exact length of a `"field":"<base64>"` string value, found without parsing (0 if absent).

    Base64 holds no quotes, so the value ends at the next quote."""
    key = frame.find(f'"{field}"')
    colon = frame.find(":", key + len(field) + 2) if key >= 0 else -1
    start = frame.find('"', colon + 1) if colon >= 0 else -1
    end = frame.find('"', start + 1) if start >= 0 else -1
    return end - start - 1 if end > start else 0


# The API's own compact layout of an audio delta (event_id first, as the fake upstream writes it, or
# second). Where it matches, the `item_id` and `response_id` it captures are the first such pairs
# in the frame (every earlier string is a quote-free value followed by a comma, never a key), and the
# first `"delta"` is the key before the payload (no value may be exactly `delta`), so the sniffs
# and b64_span_len would find the same three things.
_VALUE = r'"(?!delta")[^"\\]*"'
_API_DELTA = re.compile(
    rf'\{{(?:"event_id":{_VALUE},)?"type":"response\.output_audio\.delta",(?:"event_id":{_VALUE},)?'
    r'"response_id":"(?!delta")([^"\\]*)","item_id":"(?!delta")([^"\\]*)",'
    r'"output_index":\d+,"content_index":\d+,"delta":"'
)


def delta_fields(text: str) -> tuple[str | None, str | None, int]:
    """An audio delta's `item_id`, `response_id` and payload length, unparsed (no item: (None, None, 0))."""
    layout = _API_DELTA.match(text)
    if layout is not None:  # one match gives what the sniffs below would (see _API_DELTA)
        start = layout.end()
        end = text.find('"', start)
        response_id, item_id = layout.group(1, 2)
        return item_id, response_id, end - start if end >= 0 else 0
    item_id = sniff_string_field(text, "item_id")
    if item_id is None:
        return None, None, 0
    return item_id, sniff_string_field(text, "response_id"), b64_span_len(text)


class SessionState:
    """Per-session facts the rules need, tracked from both directions. Pure; no I/O."""

    __slots__ = (
        "assistant_audio_produced",
        "context",
        "external_audio_input",
        "input",
        "items_without_audio",
        "ledger",
        "live_model",
        "output",
        "session_tools",
        "session_type",
        "tools_from_elsewhere",
        "tools_source",
        "transcription_model_set",
        "voice",
    )

    # session.update is parsed so a response.create sent before session.updated arrives
    # already sees the new tools (optimistic; the server's echo overrides it).
    CLIENT_PARSED_TYPES: ClassVar[frozenset[str]] = frozenset({"session.update", "response.create"})
    SERVER_PARSED_TYPES: ClassVar[frozenset[str]] = frozenset(
        {
            "session.created",
            "session.updated",
            "response.created",
            "response.output_item.done",
        }
    )

    def __init__(
        self,
        context: SessionContext | None = None,
        *,
        ledger: Ledger | None = None,
        external_audio_input: bool = False,
    ) -> None:
        self.context = context or SessionContext()  # from the handshake: route, model
        self.ledger = ledger or Ledger()  # which response is in-band and active (the session's ledger)
        self.session_tools: list[dict[str, Any]] = []
        # "server": the list as the API last reported it; "client": an update not yet echoed.
        self.tools_source: str | None = None
        self.tools_from_elsewhere = False  # a prompt template or MCP server may add tools
        self.session_type: str | None = None
        self.live_model: str | None = None
        self.transcription_model_set = False
        # Finished in-band assistant items that delivered no audio: read-only and shared while empty,
        # a dict of its own from the first (an empty dict in every idle session: issue 26).
        self.items_without_audio: Mapping[str, None] = _NOTHING
        self.voice: Any = None  # current output voice (str or {"id": ...}) per the server
        self.assistant_audio_produced = False
        self.input = InputBuffer()  # the commit guard's upper bound
        self.output = OutputAudio()  # per item, the audio delivered, in its response's format
        # WebRTC/SIP sideband sockets (?call_id=): input audio arrives as media, not as appends,
        # so the append count says nothing about the buffer.
        self.external_audio_input = external_audio_input

    @property
    def input_format_bytes_per_ms(self) -> float | None:
        return self.input.confirmed_bpm

    @property
    def output_format_bytes_per_ms(self) -> float | None:
        return self.output.session_bpm

    @property
    def appended_audio_ms_upper_bound(self) -> float:
        """The most audio the server's input buffer could hold (see `InputBuffer`)."""
        return self.input.ms_upper_bound

    @appended_audio_ms_upper_bound.setter
    def appended_audio_ms_upper_bound(self, ms: float) -> None:
        self.input.set_ms(ms)

    @property
    def delivered_audio_ms(self) -> dict[str, float]:
        """Per assistant item, the most audio it could have delivered to the client."""
        delivered = self.output.delivered_ms
        if delivered is None:  # made when first asked for (not in every idle session)
            delivered = self.output.delivered_ms = {}
        return delivered

    @delivered_audio_ms.setter
    def delivered_audio_ms(self, value: dict[str, float]) -> None:
        self.output.delivered_ms = dict(value)

    @property
    def model(self) -> str | None:
        """The session's model: as session.created said, else as the handshake asked."""
        return self.live_model or self.context.model

    @property
    def known_session_type(self) -> str | None:
        return self.session_type or self.context.implied_session_type

    @property
    def tools_certain(self) -> bool:
        """True when the proxy knows the session's complete tool list (see `tool_choice_object`)."""
        return (
            self.tools_source == "server"
            and not self.tools_from_elsewhere
            and self.context.route != "sideband"  # the WebRTC/SIP peer updates the session too
        )

    @property
    def input_bytes_per_ms(self) -> float:
        return self.input_format_bytes_per_ms or MIN_BYTES_PER_MS

    @property
    def output_bytes_per_ms(self) -> float:
        return self.output_format_bytes_per_ms or MIN_BYTES_PER_MS

    # -- client -> server (what was actually forwarded) --

    def observe_client(
        self, event_type: str | None, event: dict[str, Any] | None, frame: str | bytes
    ) -> None:
        if event_type == "input_audio_buffer.append":
            self.input.append(len(frame))
        elif event_type in ("input_audio_buffer.commit", "input_audio_buffer.clear"):
            self.input.client_reset()
        elif event_type == "response.create" and event is not None:
            self.output.create_sent(event.get("response"))
        elif event_type == "session.update" and event is not None:
            session = event.get("session")
            session = session if isinstance(session, dict) else {}
            audio_in = _section(session, "input")
            self.input.update_sent(audio_in.get("format"), "format" in audio_in)
            tools = session.get("tools")
            if isinstance(tools, list):
                self.session_tools = [t for t in tools if isinstance(t, dict)]
                self.tools_source = "client"

    def observe_unreadable(self) -> None:
        """A client frame whose type the proxy could not read was forwarded: it may have been an
        append, so the buffer may hold any amount of audio until it is next known empty."""
        self.input.unreadable()

    # -- server -> client --

    def observe_server(
        self, event_type: str | None, event: dict[str, Any] | None, frame: str | bytes
    ) -> None:
        if event_type == "response.output_audio.delta":
            self._audio_delta(frame)
        elif event_type in ("input_audio_buffer.committed", "input_audio_buffer.cleared"):
            self.input.server_reset()
        elif event is None:
            return
        elif event_type in ("session.created", "session.updated"):
            session = event.get("session")
            if isinstance(session, dict):
                self._session(session, answers_update=event_type == "session.updated")
        elif event_type == "response.created":
            response = event.get("response")
            if isinstance(response, dict):
                self.output.response_created(response)
        elif event_type == "response.output_item.done":
            # In-band only: out-of-band items are not in the conversation (the ledger knows which).
            active = self.ledger.active_in_band
            if active is not None and event.get("response_id") == active.response_id:
                self._item_done(event.get("item"))

    def _audio_delta(self, frame: str | bytes) -> None:
        self.assistant_audio_produced = True
        text = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
        item_id, response_id, b64_len = delta_fields(text)
        if item_id is not None:
            self.output.delta(item_id, response_id, b64_len)

    def _session(self, session: dict[str, Any], *, answers_update: bool) -> None:
        if isinstance(session.get("type"), str):
            self.session_type = session["type"]
        if isinstance(session.get("model"), str):
            self.live_model = session["model"]
        tools = session.get("tools")
        if isinstance(tools, list):
            self.session_tools = [t for t in tools if isinstance(t, dict)]
            self.tools_source = "server"
            self.tools_from_elsewhere = session.get("prompt") is not None or any(
                t.get("type", "function") != "function" for t in self.session_tools
            )
        audio_in, audio_out = _section(session, "input"), _section(session, "output")
        self.input.session_reported(
            audio_in.get("format"), "format" in audio_in, answers_update=answers_update
        )
        if "transcription" in audio_in:
            transcription = audio_in["transcription"]
            self.transcription_model_set = isinstance(transcription, dict) and bool(
                transcription.get("model")
            )
        if "format" in audio_out:
            self.output.session_bpm = bytes_per_ms(audio_out["format"])
        if "voice" in audio_out:
            self.voice = audio_out["voice"]

    def _item_done(self, item: Any) -> None:
        # A finished assistant message that delivered no audio can never be truncated
        # (text output, or a response cancelled before its first audio delta).
        if (
            not isinstance(item, dict)
            or item.get("role") != "assistant"
            or not isinstance(item.get("id"), str)
        ):
            return
        if self.output.delivered_ms is not None and item["id"] in self.output.delivered_ms:
            return
        items = self.items_without_audio
        if not isinstance(items, dict):
            items = self.items_without_audio = {}
        if len(items) >= _MAX_TRACKED_ITEMS:
            del items[next(iter(items))]
        items[item["id"]] = None


def _section(session: dict[str, Any], name: str) -> dict[str, Any]:
    audio = session.get("audio")
    section = audio.get(name) if isinstance(audio, dict) else None
    return section if isinstance(section, dict) else {}


class SessionStateStage(BaseStage):
    """Keeps `SessionState` current: what actually went upstream, what the API said."""

    __slots__ = ("state",)

    name = "session_state"
    client_types = SessionState.CLIENT_PARSED_TYPES
    server_types = SessionState.SERVER_PARSED_TYPES
    client_sees = frozenset(
        {"input_audio_buffer.append", "input_audio_buffer.commit", "input_audio_buffer.clear"}
    )
    server_sees = frozenset(
        {"response.output_audio.delta", "input_audio_buffer.committed", "input_audio_buffer.cleared"}
    )

    def __init__(self, state: SessionState) -> None:
        self.state = state

    client_sees_all = True  # a frame whose type it cannot trust may be an append (see below)
    client_fast = frozenset({"input_audio_buffer.append"})
    server_fast = frozenset({"response.output_audio.delta"})

    def fast_client(self, frame: str, event_type: str, now: float) -> list[StageAction] | None:
        self.state.input.append(len(frame))  # what on_client does with an append (trusted type)
        return None

    def fast_server(self, frame: str, event_type: str, now: float) -> list[StageAction] | None:
        self.state._audio_delta(frame)  # what on_server does with an audio delta
        return None

    def on_client(self, message: Message, now: float) -> list[StageAction]:
        kind = message.type
        if kind in self.client_types or kind in self.client_sees:
            if message.event is None and kind != "input_audio_buffer.append" and _unsure(message):
                self.state.observe_unreadable()
            else:
                self.state.observe_client(kind, message.event, message.frame)
        elif message.event is None and _unsure(message):
            self.state.observe_unreadable()
        return []

    def on_server(self, message: Message, now: float) -> list[StageAction]:
        self.state.observe_server(message.type, message.event, message.frame)
        return []


def _unsure(message: Message) -> bool:
    """True when the frame's type was not established: not parsed (too large or too deep) and its
    type was not sniffed reliably (absent, not first, or repeated: the API keeps the last one)."""
    return message.type is None or sniff_type(message.frame) != message.type

"""Per-session facts the repair rules need, tracked from both directions of the relay.

Pure: no I/O, no clocks. The relay calls `observe_client` with what was actually sent upstream
and `observe_server` with what the API sent; audio frames are measured, never parsed."""

from __future__ import annotations

from typing import Any, ClassVar

from realtime_proxy.core.context import SessionContext
from realtime_proxy.core.events import sniff_string_field
from realtime_proxy.core.responses import Ledger
from realtime_proxy.core.stage import BaseStage, Message, StageAction

# Smallest bytes/ms of any GA format (G.711 at 8 kHz): with an unknown format it turns a
# byte count into an UPPER bound on milliseconds, so guards never block a valid request.
MIN_BYTES_PER_MS = 8.0
_MAX_TRACKED_ITEMS = 256  # delivered-audio entries kept; truncation targets recent items


def bytes_per_ms(fmt: Any) -> float | None:
    """Bytes per millisecond of a GA audio format object, None when unknown."""
    if not isinstance(fmt, dict):
        return None
    kind = fmt.get("type")
    if kind in ("audio/pcmu", "audio/pcma"):
        return 8.0
    if kind == "audio/pcm":
        rate = fmt.get("rate", 24000)
        if isinstance(rate, int | float) and not isinstance(rate, bool) and rate > 0:
            return rate * 2 / 1000  # 16-bit mono
    return None


def b64_span_len(frame: str, field: str = "delta") -> int:
    """Exact length of a `"field":"<base64>"` string value, found without parsing (0 if absent).

    Base64 holds no quotes, so the value ends at the next quote."""
    key = frame.find(f'"{field}"')
    colon = frame.find(":", key + len(field) + 2) if key >= 0 else -1
    start = frame.find('"', colon + 1) if colon >= 0 else -1
    end = frame.find('"', start + 1) if start >= 0 else -1
    return end - start - 1 if end > start else 0


class SessionState:
    """Per-session facts the rules need, tracked from both directions. Pure; no I/O."""

    # session.update is parsed so a response.create sent before session.updated arrives
    # already sees the new tools (optimistic; the server's echo overrides it).
    CLIENT_PARSED_TYPES: ClassVar[frozenset[str]] = frozenset({"session.update"})
    SERVER_PARSED_TYPES: ClassVar[frozenset[str]] = frozenset(
        {
            "session.created",
            "session.updated",
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
        self.items_without_audio: dict[
            str, None
        ] = {}  # finished in-band assistant items that delivered no audio
        self.voice: Any = None  # current output voice (str or {"id": ...}) per the server
        self.assistant_audio_produced = False
        self.input_format_bytes_per_ms: float | None = None
        self.output_format_bytes_per_ms: float | None = None
        self.appended_audio_ms_upper_bound = 0.0
        self.delivered_audio_ms: dict[str, float] = {}
        # WebRTC/SIP sideband sockets (?call_id=): input audio arrives as media, not as appends,
        # so the append count says nothing about the buffer.
        self.external_audio_input = external_audio_input

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
            # The frame is longer than its base64 payload, and base64 is 4/3 of the bytes.
            self.appended_audio_ms_upper_bound += len(frame) * 0.75 / self.input_bytes_per_ms
        elif event_type in ("input_audio_buffer.commit", "input_audio_buffer.clear"):
            self.appended_audio_ms_upper_bound = 0.0
        elif event_type == "session.update" and event is not None:
            session = event.get("session")
            tools = session.get("tools") if isinstance(session, dict) else None
            if isinstance(tools, list):
                self.session_tools = [t for t in tools if isinstance(t, dict)]
                self.tools_source = "client"

    # -- server -> client --

    def observe_server(
        self, event_type: str | None, event: dict[str, Any] | None, frame: str | bytes
    ) -> None:
        if event_type == "response.output_audio.delta":
            self._audio_delta(frame)
        elif event_type in ("input_audio_buffer.committed", "input_audio_buffer.cleared"):
            self.appended_audio_ms_upper_bound = 0.0
        elif event is None:
            return
        elif event_type in ("session.created", "session.updated"):
            session = event.get("session")
            if isinstance(session, dict):
                self._session(session)
        elif event_type == "response.output_item.done":
            # In-band only: out-of-band items are not in the conversation.
            active = self.ledger.active_in_band
            if active is not None and event.get("response_id") == active.response_id:
                self._item_done(event.get("item"))

    def _audio_delta(self, frame: str | bytes) -> None:
        self.assistant_audio_produced = True
        text = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
        item_id = sniff_string_field(text, "item_id")
        if item_id is None:
            return
        ms = b64_span_len(text) * 0.75 / self.output_bytes_per_ms
        delivered = self.delivered_audio_ms
        if item_id not in delivered and len(delivered) >= _MAX_TRACKED_ITEMS:
            del delivered[next(iter(delivered))]  # oldest first: dicts keep insertion order
        delivered[item_id] = delivered.get(item_id, 0.0) + ms

    def _session(self, session: dict[str, Any]) -> None:
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
        audio = session.get("audio")
        if not isinstance(audio, dict):
            return
        audio_in, audio_out = audio.get("input"), audio.get("output")
        if isinstance(audio_in, dict) and "transcription" in audio_in:
            transcription = audio_in["transcription"]
            self.transcription_model_set = isinstance(transcription, dict) and bool(
                transcription.get("model")
            )
        if isinstance(audio_in, dict) and "format" in audio_in:
            self.input_format_bytes_per_ms = bytes_per_ms(audio_in["format"])
        if isinstance(audio_out, dict):
            if "format" in audio_out:
                self.output_format_bytes_per_ms = bytes_per_ms(audio_out["format"])
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
        if item["id"] in self.delivered_audio_ms:
            return
        if len(self.items_without_audio) >= _MAX_TRACKED_ITEMS:
            del self.items_without_audio[next(iter(self.items_without_audio))]
        self.items_without_audio[item["id"]] = None


class SessionStateStage(BaseStage):
    """Keeps `SessionState` current: what actually went upstream, what the API said."""

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

    def on_client(self, message: Message, now: float) -> list[StageAction]:
        self.state.observe_client(message.type, message.event, message.frame)
        return []

    def on_server(self, message: Message, now: float) -> list[StageAction]:
        self.state.observe_server(message.type, message.event, message.frame)
        return []

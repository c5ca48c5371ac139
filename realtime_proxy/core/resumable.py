"""What a session must remember to survive its upstream (issue 25), wrapped around the core.

Synchronous and socket-free like the core: server events feed the conversation mirror (only the
few kinds it reads are parsed; audio never is), item ids are translated across a resumption, the
in-band response in flight is tracked (a `response.create` sent up whose `response.created` has
not come back; a response the client has seen start but not end), and the API's `session_expired`
error is kept from the client when the session is about to be resumed instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from realtime_proxy.core.actions import Action, Frame, ToClient, ToUpstream
from realtime_proxy.core.conversation import MIRRORED_EVENTS, ConversationMirror
from realtime_proxy.core.events import dump, leading_type, parse_object
from realtime_proxy.core.idmap import CLIENT_EVENTS, SERVER_EVENTS, IdMap

_WATCHED = MIRRORED_EVENTS | SERVER_EVENTS | {"response.created", "response.done", "error"}
SESSION_EXPIRED = "session_expired"


class Core(Protocol):
    def from_client(self, frame: Frame, now: float) -> list[Action] | None: ...
    def from_upstream(self, frame: Frame, now: float) -> list[Action] | None: ...
    def on_timer(self, token: str, now: float) -> list[Action]: ...
    def close(self, now: float) -> list[Action]: ...


class ResumableCore:
    """A Core (for the relay) that remembers what a new upstream session needs."""

    __slots__ = (
        "active",
        "dropped",
        "expired",
        "hide_expiry",
        "ids",
        "inner",
        "mirror",
        "on_turn_boundary",
        "pending_create",
    )

    def __init__(self, inner: Core, mirror: ConversationMirror) -> None:
        self.inner, self.mirror = inner, mirror
        self.ids = IdMap()
        self.pending_create: tuple[str, str | None] | None = None  # (client's frame, its event_id)
        self.active: str | None = None  # in-band response id the client saw created, not yet done
        self.expired = False  # the API said session_expired: the close that follows is the cap
        self.hide_expiry = True  # the edge turns this off when no resumption may follow
        self.dropped = 0  # items the mirror dropped to stay within its budget
        self.on_turn_boundary: Callable[[], None] | None = None

    # Timers and the close go straight to the inner core (methods, not bound methods kept per session).
    def on_timer(self, token: str, now: float) -> list[Action]:
        return self.inner.on_timer(token, now)

    def close(self, now: float) -> list[Action]:
        return self.inner.close(now)

    # -- client -> upstream ---------------------------------------------------------------------

    def from_client(self, frame: Frame, now: float) -> list[Action] | None:
        actions = self.inner.from_client(frame, now)
        if actions is None:
            up = self._upward(frame)
            return None if up is frame else [ToUpstream(up)]
        return [ToUpstream(self._upward(a.frame)) if isinstance(a, ToUpstream) else a for a in actions]

    def _upward(self, frame: Frame) -> Frame:
        """Track an in-band response.create and translate ids on a frame going upstream."""
        if not isinstance(frame, str):
            return frame
        original = frame
        # The leading type alone (audio appends leave here at once): a client repeating `type` to
        # hide a create only loses its own re-send or id translation, never anyone else's safety.
        kind = leading_type(frame)
        if kind != "response.create" and not (self.ids and kind in CLIENT_EVENTS):
            return frame
        event = parse_object(frame)
        if event is None or event.get("type") not in CLIENT_EVENTS:
            return frame
        if self.ids and self.ids.client_event(event):
            frame = dump(event)
        if event.get("type") == "response.create":
            response = event.get("response")
            if not (isinstance(response, dict) and response.get("conversation") == "none"):
                event_id = event.get("event_id")
                self.pending_create = (original, event_id if isinstance(event_id, str) else None)
        return frame

    def resend(self, frame: str) -> str:
        """A `response.create` lost with the old upstream, as the new one must get it (ids mapped);
        tracked as in flight again."""
        return self._upward(frame)  # type: ignore[return-value]

    # -- upstream -> client ---------------------------------------------------------------------

    def from_upstream(self, frame: Frame, now: float) -> list[Action] | None:
        kind = leading_type(frame) if isinstance(frame, str) else None
        if kind is None or kind not in _WATCHED:
            return self.inner.from_upstream(frame, now)
        event = parse_object(frame)
        if event is None:
            return self.inner.from_upstream(frame, now)
        translated = False
        if self.ids and kind in SERVER_EVENTS and self.ids.server_event(event):
            frame, translated = dump(event), True
        boundary = self._observe(kind, event)
        if boundary is None:
            return []  # session_expired, hidden: a resumption follows the close
        actions = self.inner.from_upstream(frame, now)
        if translated and actions is None:
            actions = [ToClient(frame)]
        if boundary and self.on_turn_boundary is not None:
            self.on_turn_boundary()
        return actions

    def _observe(self, kind: str, event: dict[str, Any]) -> bool | None:
        """Update what is remembered; True at a turn boundary, None to hide the event."""
        if kind in MIRRORED_EVENTS:
            self.dropped += self.mirror.on_event(kind, event)
            return False
        if kind == "error":
            error: dict[str, Any] = event["error"] if isinstance(event.get("error"), dict) else {}
            if error.get("code") == SESSION_EXPIRED:
                self.expired = True
                return None if self.hide_expiry else False
            if self.pending_create is not None and error.get("event_id") == self.pending_create[1]:
                self.pending_create = None  # refused: nothing in flight
            return False
        response = event.get("response")
        if not isinstance(response, dict) or response.get("conversation_id") is None:
            return False  # out-of-band responses write nothing into the conversation
        if kind == "response.created":
            self.active, self.pending_create = response.get("id"), None
            return False
        if response.get("id") == self.active:
            self.active = None
        return self.pending_create is None and self.active is None

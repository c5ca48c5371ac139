"""The one small interface every stage of the core has, and the message that flows through them.

A frame arrives from one side; the core wraps it in a `Message` and hands it to each stage in the
documented order (`realtime_proxy.core.session`). A stage reads the message and returns what it
decided, as values (Envoy's filter contract): `Stop()` ends the message's journey here (refused,
held, absorbed); `Replace(event)` lets it go on as that event; `ReplaceFrame(frame)` as those
bytes; plus the actions it wants carried out. Only the pipeline applies them (sets `done` and
`changed`); no stage writes a message's fields. A message no stage stopped leaves the pipeline as
`ToUpstream` / `ToClient` with its original bytes when nothing replaced it (the hot path), else
re-serialised once.

A stage that later lets a message go on (a held `response.create` released, a held
`response.created` delivered) returns `Forward(message)` (optionally with the `event` it goes on
as): the core runs it through the stages *after* that stage, in the message's direction, exactly
as if it had just passed. A message a stage builds from a dict carries its parse along.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from realtime_proxy.core.actions import Action
from realtime_proxy.core.events import dump


class Lane(StrEnum):
    """The pipeline lane a message travels: the client's events or the server's (the API's)."""

    CLIENT = "client"
    SERVER = "server"


class Message:
    """One text frame on its way through the pipeline. `event` is the parsed object when some stage
    declared the frame's type (or the frame had to be parsed to find its type); else None."""

    __slots__ = ("changed", "direction", "done", "event", "frame", "type")

    def __init__(
        self,
        direction: Lane,
        frame: str,
        event_type: str | None,
        event: dict[str, Any] | None = None,
    ) -> None:
        self.direction: Lane = direction
        self.frame = frame  # the bytes as received (or as last replaced by a stage)
        self.type = event_type
        self.event = event
        self.changed = False  # `event` differs from `frame`: serialise it on the way out
        self.done = False  # a stage ended the journey: nothing goes out for this message

    def replace(self, event: dict[str, Any]) -> None:
        """The pipeline applies a stage's `Replace`: the event (and its type) it goes on as."""
        self.event, self.changed = event, True
        event_type = event.get("type")
        self.type = event_type if isinstance(event_type, str) else self.type

    def replace_frame(self, frame: str) -> None:
        """The pipeline applies a `ReplaceFrame` (e.g. beta translation); the parse no longer applies."""
        self.frame, self.changed, self.event = frame, False, None

    def out(self) -> str:
        return dump(self.event) if self.changed and self.event is not None else self.frame

    def __eq__(self, other: object) -> bool:  # playbooks compare messages by what would go out
        if not isinstance(other, Message):
            return NotImplemented
        return (self.direction, self.out(), self.done) == (other.direction, other.out(), other.done)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:  # playbook failures print this
        return f"Message({self.direction}, {self.type!r}, {self.out()!r}, done={self.done})"


@dataclass(frozen=True, slots=True)
class Forward:
    """Let a held message continue through the stages after the one that returns this."""

    message: Message
    event: dict[str, Any] | None = None  # what it goes on as, when the stage changed it while held


@dataclass(frozen=True, slots=True)
class Stop:
    """The message being handled goes no further (refused, held, absorbed, answered by the proxy)."""


@dataclass(frozen=True, slots=True)
class Replace:
    """The message being handled goes on as `event` (its `type` read from it)."""

    event: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ReplaceFrame:
    """The message being handled goes on as these bytes (its parse no longer applies)."""

    frame: str


STOP = Stop()

Decision = Stop | Replace | ReplaceFrame
StageAction = Action | Forward | Decision


class Stage(Protocol):
    """Client event in -> actions; server event in -> actions; timer -> actions; close -> actions."""

    name: str
    client_types: frozenset[str]  # client event types this stage needs parsed
    server_types: frozenset[str]  # server event types this stage needs parsed
    client_sees: frozenset[str]  # further types it wants to see, unparsed (e.g. audio appends)
    server_sees: frozenset[str]
    client_sees_all: bool  # every client frame, whatever its type
    server_sees_all: bool
    # Audio fast path (realtime_proxy.core.pipeline): unparsed types for which `fast_client` /
    # `fast_server` (frame, type, now) returns what `on_client` / `on_server` would for that frame.
    client_fast: frozenset[str]
    server_fast: frozenset[str]

    def fast_client(self, frame: str, event_type: str, now: float) -> list[StageAction] | None: ...

    def fast_server(self, frame: str, event_type: str, now: float) -> list[StageAction] | None: ...

    def on_client(self, message: Message, now: float) -> list[StageAction]: ...

    def on_server(self, message: Message, now: float) -> list[StageAction]: ...

    def on_timer(self, token: str, now: float) -> list[StageAction]: ...

    def close(self, now: float) -> list[StageAction]: ...


class BaseStage:
    """Defaults for a stage that cares about only some of the hooks."""

    __slots__ = ()

    name = "stage"
    client_types: frozenset[str] = frozenset()
    server_types: frozenset[str] = frozenset()
    client_sees: frozenset[str] = frozenset()
    server_sees: frozenset[str] = frozenset()
    client_sees_all = False
    server_sees_all = False
    client_fast: frozenset[str] = frozenset()
    server_fast: frozenset[str] = frozenset()

    def fast_client(self, frame: str, event_type: str, now: float) -> list[StageAction] | None:
        return None

    def fast_server(self, frame: str, event_type: str, now: float) -> list[StageAction] | None:
        return None

    def on_client(self, message: Message, now: float) -> list[StageAction]:
        return []

    def on_server(self, message: Message, now: float) -> list[StageAction]:
        return []

    def on_timer(self, token: str, now: float) -> list[StageAction]:
        return []

    def close(self, now: float) -> list[StageAction]:
        return []

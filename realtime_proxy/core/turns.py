"""The turn-taking stage's records: what is upstream, what is held, the tool-call turn, and a
bounded memory of responses and tool outputs seen. Plain data; the decisions are in
`realtime_proxy.core.orchestration`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

from realtime_proxy.core.stage import Message

MEMORY = 256  # finished responses and tool outputs remembered
_NOTHING: Final[Mapping[str, None]] = MappingProxyType({})


@dataclass
class HeldCreate:
    message: Message
    event_id: str | None  # as sent upstream (the proxy's own `proxy_evt_N` if the client sent none)
    since: float
    rejected: bool = False  # the API refused it once as "already active": not held again

    @property
    def client_event_id(self) -> str | None:
        """The id every log line of this client event carries (observe mode adds none: None)."""
        return self.event_id

    @property
    def request(self) -> Any:
        return (self.message.event or {}).get("response")


@dataclass
class UpstreamResponse:
    """The in-band response the API is working on: sent by us (`create`) or started by the server."""

    create: HeldCreate | None
    response_id: str | None = None
    cancelling: bool = False  # a cancel for it went upstream: a second one would be refused


@dataclass
class ToolTurn:
    """After a response made function calls, until the response answering them is done."""

    calls: int
    awaiting: set[str]
    answer: HeldCreate | None = None  # the create that answers the turn (held or upstream)
    absorbed: int = 0
    timer: bool = False

    @property
    def answered(self) -> bool:
        """Some output is in: the client is answering the calls (and may send a create per call)."""
        return len(self.awaiting) < self.calls


@dataclass
class HeldCancel:
    message: Message
    target: HeldCreate
    since: float


@dataclass(slots=True)
class Memory:
    # Read-only views; plain dicts once written (insertion-ordered; a key re-added keeps its place),
    # one shared empty table before: two empty dicts in every idle session cost 128 B (issue 26).
    finished: Mapping[str, None] = field(default_factory=lambda: _NOTHING)
    outputs: Mapping[str, None] = field(default_factory=lambda: _NOTHING)

    def finish(self, response_id: str) -> None:
        self.finished = _added(self.finished, response_id)

    def output(self, call_id: str) -> None:
        self.outputs = _added(self.outputs, call_id)


def _added(store: Mapping[str, None], key: str) -> dict[str, None]:
    """`store` with `key` (the same dict when it was one already), the oldest dropped past MEMORY."""
    table = store if isinstance(store, dict) else {}
    table[key] = None
    while len(table) > MEMORY:
        del table[next(iter(table))]  # the oldest
    return table


def in_band(event: dict[str, Any]) -> bool:
    """An in-band create: `response` absent or an object without `"conversation": "none"`. A
    malformed one (`"response": 5`) goes on untouched and untracked: the API refuses it."""
    response = event.get("response", {})
    return isinstance(response, dict) and response.get("conversation") != "none"


def response_of(message: Message) -> dict[str, Any] | None:
    response = message.event.get("response") if message.event is not None else None
    return response if isinstance(response, dict) else None


def function_calls(response: dict[str, Any]) -> list[str]:
    if response.get("status") != "completed" or not isinstance(response.get("output"), list):
        return []
    return [
        item["call_id"]
        for item in response["output"]
        if isinstance(item, dict)
        and item.get("type") == "function_call"
        and isinstance(item.get("call_id"), str)
    ]


class TurnState(StrEnum):
    """The turn-taking stage's states (the table in realtime_proxy.core.orchestration)."""

    IDLE = "idle"
    AWAITING_OUTPUTS = "awaiting_outputs"
    REQUESTED = "requested"
    RUNNING = "running"
    CANCELLING = "cancelling"
    UNTOLD = "untold"


def turn_state(upstream: UpstreamResponse | None, held: list[HeldCreate], turn: ToolTurn | None) -> TurnState:
    """The named state of what is upstream (held creates and the tool-call turn are kept beside it)."""
    if upstream is None:
        awaiting = turn is not None and bool(turn.awaiting) and bool(held) and turn.answer is held[0]
        return TurnState.AWAITING_OUTPUTS if awaiting else TurnState.IDLE
    if upstream.response_id is None:
        return TurnState.REQUESTED if upstream.create is not None else TurnState.UNTOLD
    return TurnState.CANCELLING if upstream.cancelling else TurnState.RUNNING

"""Playbooks: feed a stage (or the whole core) a sequence of inputs and assert the *complete* list of
actions each one returns, in order. A step whose actions were never asserted fails the test (the
idea of mitmproxy's `Playbook` in `test/mitmproxy/proxy/tutils.py`).

    with Playbook(stage) as play:
        play.client({"type": "response.create"}).expect(Passes('{"type":"response.create"}'))
        play.server(done_event, now=1.0).expect(Passes(...), Forward(held))

For a stage, a message that is still going on after it (not `done`) appears as `Passes(frame)` at
the end of the list, so "held", "refused" and "forwarded as is" are all part of what is asserted.
A stage that reads the session's ledger (`stage.ledger`) gets it kept as the pipeline keeps it: a
server event recorded before the stage sees it, a create that passes recorded as sent.
For the core (`SessionCore`), `None` (the untouched-frame fast path) is shown as `[Untouched()]`.
"""

from __future__ import annotations

import difflib
import pprint
from dataclasses import dataclass
from typing import Any

import orjson

from realtime_proxy.core.events import parse_object, sniff_type
from realtime_proxy.core.responses import SERVER_TYPES as LEDGER_SERVER_TYPES
from realtime_proxy.core.stage import Forward, Lane, Message, Replace, ReplaceFrame, Stop


@dataclass(frozen=True)
class Passes:
    """The message went on past the stage, as this frame."""

    frame: str


@dataclass(frozen=True)
class Untouched:
    """The core forwards the frame unchanged without building any action (its fast path)."""


def frame_of(event: dict[str, Any] | str) -> str:
    return event if isinstance(event, str) else orjson.dumps(event).decode()


def message(direction: Lane, event: dict[str, Any] | str) -> Message:
    frame = frame_of(event)
    parsed = parse_object(frame)
    event_type = sniff_type(frame) or (parsed.get("type") if parsed else None)
    return Message(direction, frame, event_type if isinstance(event_type, str) else None, parsed)


class Step:
    def __init__(self, label: str, actions: list[Any]) -> None:
        self.label, self.actions, self.checked = label, actions, False

    def expect(self, *expected: Any) -> Step:
        self.checked = True
        if list(expected) != self.actions:
            diff = "\n".join(
                difflib.unified_diff(
                    pprint.pformat(list(expected), width=110).splitlines(),
                    pprint.pformat(self.actions, width=110).splitlines(),
                    "expected",
                    "actual",
                    lineterm="",
                )
            )
            raise AssertionError(f"{self.label}: actions differ\n{diff}")
        return self


class Playbook:
    """Drives a stage (`on_client(Message, now)`, ...) or a core (`from_client(frame, now)`, ...)."""

    def __init__(self, target: Any, now: float = 0.0) -> None:
        self.target, self.now = target, now
        self.steps: list[Step] = []
        self.is_core = hasattr(target, "from_client")

    def __enter__(self) -> Playbook:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            unchecked = [step.label for step in self.steps if not step.checked]
            assert not unchecked, f"steps whose actions were never asserted: {unchecked}"

    def _step(self, label: str, actions: list[Any]) -> Step:
        if self.steps and not self.steps[-1].checked:
            raise AssertionError(f"{self.steps[-1].label}: actions never asserted before {label}")
        step = Step(label, actions)
        self.steps.append(step)
        return step

    def _at(self, now: float | None) -> float:
        if now is not None:
            self.now = now
        return self.now

    def _feed(self, direction: Lane, event: dict[str, Any] | str | bytes, now: float | None) -> Step:
        at = self._at(now)
        label = f"{direction} {event!r:.80}"
        if self.is_core:
            frame = event if isinstance(event, bytes) else frame_of(event)
            feed = self.target.from_client if direction == "client" else self.target.from_upstream
            result = feed(frame, at)
            return self._step(label, [Untouched()] if result is None else list(result))
        assert not isinstance(event, bytes)
        msg = message(direction, event)
        ledger = getattr(self.target, "ledger", None)
        if ledger is not None and direction == "server" and msg.type in LEDGER_SERVER_TYPES:
            ledger.on_server(msg.type, msg.event, at)
        hook = self.target.on_client if direction == "client" else self.target.on_server
        actions = applied(hook(msg, at), msg)
        if not msg.done:
            if ledger is not None and msg.type == "response.create" and msg.event is not None:
                ledger.sent(msg.event, at)
            actions.append(Passes(msg.out()))
        return self._step(label, actions)

    def client(self, event: dict[str, Any] | str | bytes, now: float | None = None) -> Step:
        return self._feed("client", event, now)

    def server(self, event: dict[str, Any] | str | bytes, now: float | None = None) -> Step:
        return self._feed("server", event, now)

    def timer(self, token: str, now: float | None = None) -> Step:
        actions = self.target.on_timer(token, self._at(now))
        return self._step(f"timer {token}", list(actions) if self.is_core else applied(actions, None))

    def close(self, now: float | None = None) -> Step:
        actions = self.target.close(self._at(now))
        return self._step("close", list(actions) if self.is_core else applied(actions, None))


def applied(actions: list[Any], msg: Message | None) -> list[Any]:
    """A stage's actions as the pipeline applies them: its decisions about the message (`Stop`,
    `Replace`, `ReplaceFrame`) change `msg` and are shown by how it `Passes` (or not); a `Forward`ed
    message goes on (not done) as the event it carries."""
    shown = []
    for action in actions:
        if isinstance(action, Stop | Replace | ReplaceFrame):
            assert msg is not None, f"{action!r} outside a message's hook"
            if isinstance(action, Stop):
                msg.done = True
            elif isinstance(action, Replace):
                msg.replace(action.event)
            else:
                msg.replace_frame(action.frame)
            continue
        if isinstance(action, Forward):
            action.message.done = False
            if action.event is not None:
                action.message.replace(action.event)
            action = Forward(action.message)
        shown.append(action)
    return shown

"""Playbooks: feed a stage (or the whole core) a sequence of inputs and assert the *complete* list of
actions each one returns, in order. A step whose actions were never asserted fails the test (the
idea of mitmproxy's `Playbook` in `test/mitmproxy/proxy/tutils.py`).

    with Playbook(stage) as play:
        play.client({"type": "response.create"}).expect(Passes('{"type":"response.create"}'))
        play.server(done_event, now=1.0).expect(Passes(...), Forward(held))

For a stage, a message that is still going on after it (not `done`) appears as `Passes(frame)` at
the end of the list, so "held", "refused" and "forwarded as is" are all part of what is asserted.
For the core (`SessionCore`), `None` (the untouched-frame fast path) is shown as `[Untouched()]`.
"""

from __future__ import annotations

import difflib
import pprint
from dataclasses import dataclass
from typing import Any

import orjson

from realtime_proxy.core.events import parse_object, sniff_type
from realtime_proxy.core.stage import Direction, Message


@dataclass(frozen=True)
class Passes:
    """The message went on past the stage, as this frame."""

    frame: str


@dataclass(frozen=True)
class Untouched:
    """The core forwards the frame unchanged without building any action (its fast path)."""


def frame_of(event: dict[str, Any] | str) -> str:
    return event if isinstance(event, str) else orjson.dumps(event).decode()


def message(direction: Direction, event: dict[str, Any] | str) -> Message:
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

    def _feed(self, direction: Direction, event: dict[str, Any] | str | bytes, now: float | None) -> Step:
        at = self._at(now)
        label = f"{direction} {event!r:.80}"
        if self.is_core:
            frame = event if isinstance(event, bytes) else frame_of(event)
            feed = self.target.from_client if direction == "client" else self.target.from_upstream
            result = feed(frame, at)
            return self._step(label, [Untouched()] if result is None else list(result))
        assert not isinstance(event, bytes)
        msg = message(direction, event)
        hook = self.target.on_client if direction == "client" else self.target.on_server
        actions = list(hook(msg, at))
        if not msg.done:
            actions.append(Passes(msg.out()))
        return self._step(label, actions)

    def client(self, event: dict[str, Any] | str | bytes, now: float | None = None) -> Step:
        return self._feed("client", event, now)

    def server(self, event: dict[str, Any] | str | bytes, now: float | None = None) -> Step:
        return self._feed("server", event, now)

    def timer(self, token: str, now: float | None = None) -> Step:
        return self._step(f"timer {token}", list(self.target.on_timer(token, self._at(now))))

    def close(self, now: float | None = None) -> Step:
        return self._step("close", list(self.target.close(self._at(now))))

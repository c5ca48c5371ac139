"""core/live_gate.py: the Live start gate, decision by decision."""

from __future__ import annotations

from realtime_proxy.core.live_gate import LiveStartGate
from realtime_proxy.core.live_observations import LiveEarlyCommand
from realtime_proxy.core.stage import STOP, Forward, Lane, Message

START = '{"type":"session.start"}'
ERROR = '{"type":"error","error":{"code":"session_not_started"}}'


def command(event_id: object = None) -> Message:
    event = {"type": "session.update", "event_id": event_id}
    return Message(Lane.CLIENT, '{"type":"session.update"}', "session.update", event)


def test_a_fresh_gate_is_closed_and_waits_for_nothing() -> None:
    gate = LiveStartGate(apply=True)
    assert gate.start_sent is False and gate.started is False and gate.held == []


def test_an_error_before_session_start_does_not_open_the_gate() -> None:
    """A command refused before `session.start` gets an `error`; the gate still holds what follows
    the start, until `session.started`."""
    gate = LiveStartGate(apply=True)
    assert gate.on_client(command("early"), 0.0) == []  # before the start: the API answers it
    assert gate.on_server(Message(Lane.SERVER, ERROR, "error"), 0.5) == []
    assert gate.on_client(Message(Lane.CLIENT, START, "session.start"), 1.0) == []
    held = command(5)
    assert gate.on_client(held, 2.0) == [LiveEarlyCommand("session.update", None, True, 1), STOP]
    second = command("c2")
    assert gate.on_client(second, 2.5) == [LiveEarlyCommand("session.update", "c2", True, 2), STOP]
    started = Message(Lane.SERVER, '{"type":"session.started"}', "session.started")
    assert gate.on_server(started, 3.0) == [Forward(held), Forward(second)]
    assert gate.on_client(command("late"), 4.0) == []

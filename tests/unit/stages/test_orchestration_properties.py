"""The turn-taking stage against a small model of the API, in orders hypothesis picks: whatever the
client does and whenever the API answers, the API never refuses a create as "already active", the
client never sees `response_cancel_not_active` once it has asked for a response, and every create
the client sent is accounted for (sent upstream, absorbed into a turn's answer, or dropped)."""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from realtime_proxy.core.actions import CancelTimer, StartTimer
from realtime_proxy.core.orchestration import OrchestrationStage
from realtime_proxy.core.orchestration_observations import (
    CreateCoalesced,
    CreateDropped,
    OrchestrationOptions,
)
from realtime_proxy.core.responses import Ledger
from realtime_proxy.core.stage import Forward, Message
from tests.playbook import applied, message

CONV = "conv_1"


@dataclass
class Api:
    """Just the turn rules of the Realtime API: one in-band response at a time (from its create), a
    response cancellable from its `response.created`, `tool_choice: "required"` makes two calls."""

    ids: Any = field(default_factory=lambda: itertools.count(1))
    active: str | None = None
    started: set[str] = field(default_factory=set)
    cancelled: set[str] = field(default_factory=set)
    outbox: deque[dict[str, Any]] = field(default_factory=deque)
    refused_active: int = 0
    in_band_received: int = 0
    received: list[str] = field(default_factory=list)

    def receive(self, event: dict[str, Any]) -> None:
        self.received.append(event["type"])
        if event["type"] == "response.create":
            self._create(event)
        elif event["type"] == "response.cancel":
            target = event.get("response_id") or self.active
            if target is None or target not in self.started or target in self.cancelled:
                self._error("response_cancel_not_active", event.get("event_id"))
            else:
                self.cancelled.add(target)

    def _create(self, event: dict[str, Any]) -> None:
        request = event.get("response") or {}
        in_band = request.get("conversation") != "none"
        self.in_band_received += in_band
        if request.get("bogus"):  # invalid: refused, no response
            self._error("unknown_parameter", event.get("event_id"))
            return
        if in_band and self.active is not None:
            self.refused_active += 1
            self._error("conversation_already_has_active_response", event.get("event_id"))
            return
        response_id = f"r{next(self.ids)}"
        self.active = response_id if in_band else self.active
        conversation = CONV if in_band else None
        self.outbox.append(
            {"type": "response.created", "response": {"id": response_id, "conversation_id": conversation}}
        )
        calls = (
            [f"call_{response_id}_{i}" for i in (1, 2)] if request.get("tool_choice") == "required" else []
        )
        self.outbox.append(
            {
                "type": "response.done",
                "response": {"id": response_id, "conversation_id": conversation, "calls": calls},
            }
        )

    def _error(self, code: str, event_id: Any) -> None:
        self.outbox.append(
            {"type": "error", "error": {"type": "invalid_request_error", "code": code, "event_id": event_id}}
        )

    def deliver(self) -> dict[str, Any]:
        event = self.outbox.popleft()
        response = event.get("response")
        if event["type"] == "response.created":
            self.started.add(response["id"])
        if event["type"] == "response.done":
            status = "cancelled" if response["id"] in self.cancelled else "completed"
            items = [
                {"type": "function_call", "call_id": c, "status": "completed"} for c in response.pop("calls")
            ]
            response.update(status=status, output=[] if status == "cancelled" else items)
            if self.active == response["id"]:
                self.active = None
        return event


@dataclass
class Session:
    stage: OrchestrationStage
    api: Api = field(default_factory=Api)
    client_seen: list[dict[str, Any]] = field(default_factory=list)
    timer_armed: bool = False
    unanswered_calls: list[str] = field(default_factory=list)
    creates_sent: int = 0
    accounted: int = 0  # creates absorbed or dropped by the stage
    cancels_before_any_create: int = 0
    bad_creates_sent: int = 0

    def run(self, actions: list[Any], msg: Message | None) -> None:
        for action in applied(actions, msg):  # as the pipeline applies them
            if isinstance(action, Forward):
                self.run([], action.message)
            elif isinstance(action, StartTimer):
                self.timer_armed = True
            elif isinstance(action, CancelTimer):
                self.timer_armed = False
            elif isinstance(action, CreateCoalesced | CreateDropped):
                self.accounted += 1
        if msg is not None and not msg.done:
            event = msg.event if msg.event is not None else message(msg.direction, msg.out()).event
            assert event is not None
            if msg.direction == "client":
                self.api.receive(dict(event))
            else:
                self.client_seen.append(event)
                if event["type"] == "response.done":
                    self.unanswered_calls += [i["call_id"] for i in event["response"]["output"]]

    def client(self, event: dict[str, Any]) -> None:
        msg = message("client", event)
        self.run(self.stage.on_client(msg, 0.0), msg)

    def step(self, op: str, n: int) -> None:
        if op in ("create", "create_tools", "create_id", "create_bad"):
            self.creates_sent += 1
            request = {"tool_choice": "required"} if op == "create_tools" else {}
            request = {"bogus": True} if op == "create_bad" else request
            self.bad_creates_sent += op == "create_bad"
            event: dict[str, Any] = {"type": "response.create", "response": request}
            self.client({**event, "event_id": f"c{n}"} if op == "create_id" else event)
        elif op == "create_oob":
            self.client({"type": "response.create", "response": {"conversation": "none"}})
        elif op == "cancel":
            if self.creates_sent == self.bad_creates_sent:  # no valid create yet: the API answers
                self.cancels_before_any_create += 1
            self.client({"type": "response.cancel", "event_id": f"x{n}"})
        elif op == "output" and self.unanswered_calls:
            call = self.unanswered_calls.pop(n % len(self.unanswered_calls))
            self.client(
                {
                    "type": "conversation.item.create",
                    "item": {"type": "function_call_output", "call_id": call, "output": "{}"},
                }
            )
        elif op == "deliver" and self.api.outbox:
            msg = message("server", self.api.deliver())
            self.stage.ledger.on_server(msg.type, msg.event, 0.0)  # the pipeline does, before the stages
            self.run(self.stage.on_server(msg, 0.0), msg)
        elif op == "timer" and self.timer_armed:
            self.timer_armed = False
            self.run(self.stage.on_timer("orchestration.tool_outputs", 0.0), None)


OPS = st.sampled_from(
    [
        "create",
        "create_id",
        "create_tools",
        "create_bad",
        "create_oob",
        "cancel",
        "output",
        "deliver",
        "deliver",
        "timer",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(OPS, st.integers(0, 5)), max_size=40))
def test_any_interleaving_keeps_the_turn_rules(steps: list[tuple[str, int]]) -> None:
    session = Session(OrchestrationStage(Ledger(), OrchestrationOptions(max_held=100)))
    for n, (op, pick) in enumerate(steps):
        session.step(op, n * 10 + pick)
    while session.api.outbox or session.timer_armed:  # let everything finish
        session.step("deliver" if session.api.outbox else "timer", 0)
    session.run(session.stage.close(1.0), None)

    assert session.api.refused_active == 0
    codes = [e["error"]["code"] for e in session.client_seen if e["type"] == "error"]
    assert "conversation_already_has_active_response" not in codes
    assert codes.count("response_cancel_not_active") <= session.cancels_before_any_create
    assert session.creates_sent == session.api.in_band_received + session.accounted
    assert not session.stage.held and session.stage.upstream is None


@settings(max_examples=100, deadline=None)
@given(st.permutations(["answer1", "answer2", "deliver", "deliver", "deliver"]))
def test_a_create_per_tool_output_in_any_order_gets_one_answer_after_both_outputs(order: list[str]) -> None:
    """What agent frameworks do after parallel calls: each output, then at once its own create;
    the API's events arrive in between at any point."""
    session = Session(OrchestrationStage(Ledger(), OrchestrationOptions()))
    session.step("create_tools", 0)
    session.step("deliver", 0)
    session.step("deliver", 0)
    calls = list(session.unanswered_calls)
    for op in order:
        if op == "deliver":
            session.step("deliver", 0)
            continue
        item = {"type": "function_call_output", "call_id": calls[int(op[-1]) - 1], "output": "{}"}
        session.client({"type": "conversation.item.create", "item": item})
        session.client({"type": "response.create"})
    while session.api.outbox:
        session.step("deliver", 0)
    assert session.api.refused_active == 0
    assert [e for e in session.client_seen if e["type"] == "error"] == []
    after_calls = session.api.received[1:]
    assert after_calls == ["conversation.item.create", "conversation.item.create", "response.create"]
    assert len([e for e in session.client_seen if e["type"] == "response.done"]) == 2

"""Playbooks of the turn-taking stage: each step's whole action list, in order, for every
interleaving of creates, cancels, tool outputs, server events and timers we could think of."""

from __future__ import annotations

from typing import Any

from realtime_proxy.core.actions import (
    CancelTimer,
    ResponseDone,
    StartTimer,
    ToClient,
    ToUpstream,
    UpstreamError,
)
from realtime_proxy.core.orchestration import TIMER, OrchestrationStage
from realtime_proxy.core.orchestration_observations import (
    CancelAbsorbed,
    CancelHeld,
    CancelReleased,
    CreateCoalesced,
    CreateDropped,
    HoldOverflow,
    OrchestrationOptions,
    ResponseHeld,
    ResponseReleased,
    cancelled_done,
)
from realtime_proxy.core.responses import Ledger
from realtime_proxy.core.rules import build_chain
from realtime_proxy.core.session import CoreOptions, SessionCore
from realtime_proxy.core.stage import Forward
from realtime_proxy.core.turns import TurnState
from tests.playbook import Passes, Playbook, Untouched, frame_of, message

CONV = "conv_1"


def stage(**options: Any) -> OrchestrationStage:
    return OrchestrationStage(Ledger(), OrchestrationOptions(**options))


def create(event_id: str | None = None, **response: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "response.create"}
    if response:
        event["response"] = response
    if event_id is not None:
        event["event_id"] = event_id
    return event


def with_id(event: dict[str, Any], event_id: str) -> dict[str, Any]:
    return {**event, "event_id": event_id}


def cancel(event_id: str | None = None, response_id: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "response.cancel"}
    if event_id is not None:
        event["event_id"] = event_id
    if response_id is not None:
        event["response_id"] = response_id
    return event


def output(call_id: str) -> dict[str, Any]:
    item = {"type": "function_call_output", "call_id": call_id, "output": "{}"}
    return {"type": "conversation.item.create", "item": item}


def created(response_id: str, conversation: str | None = CONV) -> dict[str, Any]:
    body = {"id": response_id, "status": "in_progress", "conversation_id": conversation}
    return {"type": "response.created", "response": body}


def done(
    response_id: str, *calls: str, conversation: str | None = CONV, status: str = "completed"
) -> dict[str, Any]:
    items = [{"type": "function_call", "call_id": call, "name": "f", "status": "completed"} for call in calls]
    body = {"id": response_id, "status": status, "conversation_id": conversation, "output": items}
    return {"type": "response.done", "response": body}


def error(code: str, event_id: str | None) -> dict[str, Any]:
    body = {
        "type": "invalid_request_error",
        "code": code,
        "message": "m",
        "param": None,
        "event_id": event_id,
    }
    return {"type": "error", "error": body}


def fwd(direction: Any, event: dict[str, Any]) -> Forward:
    return Forward(message(direction, event))


def passes(event: dict[str, Any]) -> Passes:
    return Passes(frame_of(event))


# -- serialising -------------------------------------------------------------------------------------


def test_double_create_is_held_until_the_first_is_done() -> None:
    with Playbook(stage()) as play:
        play.client(create("a")).expect(passes(create("a")))
        play.client(create("b")).expect(ResponseHeld("b", "active_response", 1))
        play.server(created("r1")).expect(passes(created("r1")))
        play.server(done("r1"), now=2.5).expect(
            ResponseReleased("b", "response_done", 2.5), fwd("client", create("b")), passes(done("r1"))
        )
        play.client(create("c")).expect(ResponseHeld("c", "active_response", 1))


def test_creates_without_id_get_the_proxys_and_an_error_naming_one_releases_the_next() -> None:
    with Playbook(stage()) as play:
        play.client(create()).expect(passes(with_id(create(), "proxy_evt_1")))
        play.client(create(instructions="x")).expect(ResponseHeld("proxy_evt_2", "active_response", 1))
        refused = error("invalid_value", "proxy_evt_1")
        play.server(refused, now=1.0).expect(
            ResponseReleased("proxy_evt_2", "create_failed", 1.0),
            fwd("client", with_id(create(instructions="x"), "proxy_evt_2")),
            passes(refused),  # the attribution stage after this one hides the proxy's id
        )
        play.server(error("invalid_value", "someone_else")).expect(
            passes(error("invalid_value", "someone_else"))
        )


def test_out_of_band_creates_run_alongside_and_never_release_in_band_ones() -> None:
    oob = create("o1", conversation="none", output_modalities=["text"])
    with Playbook(stage()) as play:
        play.client(create("a")).expect(passes(create("a")))
        play.client(oob).expect(passes(oob))
        play.client(create("b")).expect(ResponseHeld("b", "active_response", 1))
        play.client(with_id(oob, "o2")).expect(passes(with_id(oob, "o2")))
        play.server(created("r_oob", conversation=None)).expect(passes(created("r_oob", conversation=None)))
        play.server(created("r1")).expect(passes(created("r1")))
        play.server(done("r_oob", conversation=None)).expect(passes(done("r_oob", conversation=None)))
        play.server(done("r1"), now=1.0).expect(
            ResponseReleased("b", "response_done", 1.0), fwd("client", create("b")), passes(done("r1"))
        )


def test_a_response_started_by_the_server_holds_client_creates() -> None:
    with Playbook(stage()) as play:
        play.server(created("r_vad")).expect(passes(created("r_vad")))
        play.client(create("a")).expect(ResponseHeld("a", "active_response", 1))
        play.server(done("r_vad"), now=0.5).expect(
            ResponseReleased("a", "response_done", 0.5), fwd("client", create("a")), passes(done("r_vad"))
        )


def test_a_create_refused_as_already_active_waits_for_the_unseen_response() -> None:
    with Playbook(stage()) as play:
        play.client(create("a")).expect(passes(create("a")))
        play.server(created("r_vad"), now=0.1).expect(passes(created("r_vad")))  # bound to "a" for now
        play.server(error("conversation_already_has_active_response", "a"), now=0.2).expect(
            ResponseHeld("a", "rejected_as_active", 1)
        )
        play.server(done("r_vad"), now=1.2).expect(
            ResponseReleased("a", "response_done", 1.0), fwd("client", create("a")), passes(done("r_vad"))
        )
        # Refused again: the client sees the API's answer this time.
        refused = error("conversation_already_has_active_response", "a")
        play.server(refused).expect(passes(refused))


def test_past_the_limit_a_create_goes_on_and_the_api_answers_it() -> None:
    with Playbook(stage(max_held=1)) as play:
        play.client(create("a")).expect(passes(create("a")))
        play.client(create("b")).expect(ResponseHeld("b", "active_response", 1))
        play.client(create("c")).expect(HoldOverflow("c", 1), passes(create("c")))
        play.server(error("conversation_already_has_active_response", "c")).expect(
            passes(error("conversation_already_has_active_response", "c"))
        )


def test_an_overflow_while_tool_outputs_are_awaited_runs_first_and_the_answer_waits_for_it() -> None:
    with Playbook(stage(max_held=1)) as play:
        play.server(done("r1", "call_a", "call_b")).expect(passes(done("r1", "call_a", "call_b")))
        play.client(output("call_a")).expect(passes(output("call_a")))
        play.client(create("x")).expect(ResponseHeld("x", "tool_outputs", 1), StartTimer(10.0, TIMER))
        play.client(create("y", instructions="other")).expect(
            HoldOverflow("y", 1), passes(create("y", instructions="other"))
        )
        play.client(output("call_b")).expect(CancelTimer(TIMER), passes(output("call_b")))
        play.server(created("r2")).expect(passes(created("r2")))
        play.server(done("r2"), now=1.0).expect(
            ResponseReleased("x", "response_done", 1.0), fwd("client", create("x")), passes(done("r2"))
        )


# -- the tool-call turn ------------------------------------------------------------------------------


def test_parallel_calls_with_outputs_out_of_order_get_one_answer() -> None:
    with Playbook(stage()) as play:
        play.client(create("t")).expect(passes(create("t")))
        play.server(created("r1")).expect(passes(created("r1")))
        play.server(done("r1", "call_a", "call_b", "call_c")).expect(
            passes(done("r1", "call_a", "call_b", "call_c"))
        )
        play.client(output("call_c")).expect(passes(output("call_c")))
        play.client(create("x"), now=1.0).expect(
            ResponseHeld("x", "tool_outputs", 1), StartTimer(10.0, TIMER)
        )
        play.client(output("call_a")).expect(passes(output("call_a")))
        play.client(create("y")).expect(CreateCoalesced("y", "x", 3))
        play.client(output("call_b"), now=1.5).expect(
            CancelTimer(TIMER),
            fwd("client", output("call_b")),  # the last output goes before the answer it unblocks
            ResponseReleased("x", "tool_outputs", 0.5),
            fwd("client", create("x")),
        )
        play.client(create("z")).expect(CreateCoalesced("z", "x", 3))
        # One create per call at most: a fourth is a new request, serialised after the answer.
        play.client(create("w")).expect(ResponseHeld("w", "active_response", 1))
        play.server(created("r2")).expect(passes(created("r2")))
        play.server(done("r2"), now=3.0).expect(
            ResponseReleased("w", "response_done", 1.5), fwd("client", create("w")), passes(done("r2"))
        )


def test_outputs_and_creates_sent_before_the_calls_response_is_done() -> None:
    with Playbook(stage()) as play:
        play.client(create("t")).expect(passes(create("t")))
        play.server(created("r1")).expect(passes(created("r1")))
        # Frameworks run a tool on function_call_arguments.done, before response.done.
        play.client(output("call_a")).expect(passes(output("call_a")))
        play.client(create("x")).expect(ResponseHeld("x", "active_response", 1))
        play.client(create("y")).expect(ResponseHeld("y", "active_response", 2))
        play.server(done("r1", "call_a", "call_b"), now=1.0).expect(
            CreateCoalesced("y", "x", 2), StartTimer(10.0, TIMER), passes(done("r1", "call_a", "call_b"))
        )
        play.client(output("call_b"), now=1.25).expect(
            CancelTimer(TIMER),
            fwd("client", output("call_b")),
            ResponseReleased("x", "tool_outputs", 1.25),
            fwd("client", create("x")),
        )


def test_all_outputs_in_before_the_create_it_goes_at_once_and_the_duplicate_is_absorbed() -> None:
    with Playbook(stage()) as play:
        play.server(done("r1", "call_a", "call_b")).expect(passes(done("r1", "call_a", "call_b")))
        play.client(output("call_a")).expect(passes(output("call_a")))
        play.client(output("call_b")).expect(passes(output("call_b")))
        play.client(create("x")).expect(passes(create("x")))
        play.client(create("y")).expect(CreateCoalesced("y", "x", 2))
        play.server(done("r2")).expect(passes(done("r2")))
        play.client(create("next")).expect(passes(create("next")))  # a new turn


def test_a_different_create_in_the_turn_is_not_absorbed() -> None:
    with Playbook(stage()) as play:
        play.server(done("r1", "call_a", "call_b")).expect(passes(done("r1", "call_a", "call_b")))
        play.client(output("call_a")).expect(passes(output("call_a")))
        play.client(create("x")).expect(ResponseHeld("x", "tool_outputs", 1), StartTimer(10.0, TIMER))
        play.client(create("y", instructions="other")).expect(ResponseHeld("y", "active_response", 2))


def test_missing_outputs_time_out_and_the_answer_goes_with_what_there_is() -> None:
    with Playbook(stage(tool_output_timeout=2.0)) as play:
        play.server(done("r1", "call_a", "call_b")).expect(passes(done("r1", "call_a", "call_b")))
        play.client(output("call_a")).expect(passes(output("call_a")))
        play.client(create("x"), now=1.0).expect(ResponseHeld("x", "tool_outputs", 1), StartTimer(2.0, TIMER))
        play.timer(TIMER, now=3.0).expect(
            ResponseReleased("x", "tool_output_timeout", 2.0), fwd("client", create("x"))
        )
        play.client(output("call_b")).expect(passes(output("call_b")))  # late: nothing to release
        play.timer(TIMER).expect()  # a stale timer does nothing


def test_a_create_before_any_output_is_a_new_request_and_goes_at_once() -> None:
    """E.g. `tool_choice: "required"` used for structured output: the calls are never answered."""
    with Playbook(stage()) as play:
        play.server(done("r1", "call_a", "call_b")).expect(passes(done("r1", "call_a", "call_b")))
        play.client(create("x")).expect(passes(create("x")))
        play.client(output("call_a")).expect(passes(output("call_a")))  # the turn is over: nothing waits
        play.server(done("r2")).expect(passes(done("r2")))
        play.client(create("y")).expect(passes(create("y")))


def test_creates_held_behind_the_calls_response_without_outputs_are_not_its_answer() -> None:
    with Playbook(stage()) as play:
        play.client(create("t")).expect(passes(create("t")))
        play.client(create("x")).expect(ResponseHeld("x", "active_response", 1))
        play.client(create("y")).expect(ResponseHeld("y", "active_response", 2))
        play.server(done("r1", "call_a", "call_b"), now=1.0).expect(
            ResponseReleased("x", "response_done", 1.0),
            fwd("client", create("x")),
            passes(done("r1", "call_a", "call_b")),
        )


def test_a_cancelled_tool_call_response_starts_no_turn() -> None:
    with Playbook(stage()) as play:
        cancelled = done("r1", "call_a", status="cancelled")
        play.server(cancelled).expect(passes(cancelled))
        play.client(create("x")).expect(passes(create("x")))


# -- cancels -----------------------------------------------------------------------------------------


def test_cancel_before_created_waits_for_the_response_id() -> None:
    with Playbook(stage()) as play:
        play.client(create("a")).expect(passes(create("a")))
        play.client(cancel("stop"), now=0.25).expect(CancelHeld("stop", "a"))
        play.client(cancel("again")).expect(CancelAbsorbed("again", "already_cancelling"))
        play.server(created("r1"), now=0.5).expect(
            CancelReleased("stop", "r1", 0.25),
            fwd("client", cancel("stop", response_id="r1")),
            passes(created("r1")),
        )
        play.client(cancel("again_later")).expect(CancelAbsorbed("again_later", "already_cancelling"))


def test_a_second_cancel_of_a_running_response_is_absorbed() -> None:
    with Playbook(stage()) as play:
        play.client(create("a")).expect(passes(create("a")))
        play.server(created("r1")).expect(passes(created("r1")))
        play.client(cancel("other", response_id="r_oob")).expect(passes(cancel("other", response_id="r_oob")))
        play.client(cancel("stop", response_id="r1")).expect(passes(cancel("stop", response_id="r1")))
        play.client(cancel("again")).expect(CancelAbsorbed("again", "already_cancelling"))
        play.client(cancel("again_id", response_id="r1")).expect(
            CancelAbsorbed("again_id", "already_cancelling")
        )
        play.server(done("r1", status="cancelled")).expect(passes(done("r1", status="cancelled")))
        play.client(cancel("after")).expect(CancelAbsorbed("after", "response_done"))


def test_cancel_of_a_create_that_failed_is_absorbed_with_it() -> None:
    with Playbook(stage()) as play:
        play.client(create("a")).expect(passes(create("a")))
        play.client(cancel("stop")).expect(CancelHeld("stop", "a"))
        play.server(error("invalid_value", "a")).expect(
            CancelAbsorbed("stop", "create_failed"), passes(error("invalid_value", "a"))
        )


def test_cancel_of_a_held_create_drops_it_and_answers_cancelled() -> None:
    held = create("x", metadata={"k": "v"})
    with Playbook(stage()) as play:
        play.server(done("r1", "call_a", "call_b")).expect(passes(done("r1", "call_a", "call_b")))
        play.client(output("call_a")).expect(passes(output("call_a")))
        play.client(held, now=1.0).expect(ResponseHeld("x", "tool_outputs", 1), StartTimer(10.0, TIMER))
        answer = cancelled_done("proxy_evt_1", "resp_proxy_cancelled_1", CONV, {"metadata": {"k": "v"}})
        play.client(cancel("stop"), now=1.5).expect(
            CreateDropped("x", "cancelled", 0.5), CancelTimer(TIMER), fwd("server", answer)
        )
        play.client(output("call_b")).expect(passes(output("call_b")))
        play.client(create("y")).expect(passes(create("y")))  # the turn was cancelled with its answer


def test_cancel_after_done_is_absorbed() -> None:
    with Playbook(stage()) as play:
        play.client(cancel("early")).expect(passes(cancel("early")))  # nothing ever ran: the API answers
        play.client(create("a")).expect(passes(create("a")))
        play.server(created("r1")).expect(passes(created("r1")))
        play.server(done("r1")).expect(passes(done("r1")))
        play.client(cancel("late")).expect(CancelAbsorbed("late", "response_done"))
        play.client(cancel("late_id", response_id="r1")).expect(CancelAbsorbed("late_id", "response_done"))
        play.client(cancel("other", response_id="r_oob")).expect(passes(cancel("other", response_id="r_oob")))


# -- closing, switches, observe mode -----------------------------------------------------------------


def test_closing_with_creates_held_drops_them() -> None:
    with Playbook(stage()) as play:
        play.server(done("r1", "call_a", "call_b")).expect(passes(done("r1", "call_a", "call_b")))
        play.client(output("call_b")).expect(passes(output("call_b")))
        play.client(create("x"), now=1.0).expect(
            ResponseHeld("x", "tool_outputs", 1), StartTimer(10.0, TIMER)
        )
        play.client(create("y", instructions="other")).expect(ResponseHeld("y", "active_response", 2))
        play.close(now=4.0).expect(
            CancelTimer(TIMER), CreateDropped("x", "closed", 3.0), CreateDropped("y", "closed", 3.0)
        )


def test_switches_turn_features_off() -> None:
    with Playbook(stage(serialise=False, coalesce_tool_calls=False, hold_early_cancels=False)) as play:
        play.client(create("a")).expect(passes(create("a")))
        play.client(create("b")).expect(passes(create("b")))
        play.client(cancel("c")).expect(passes(cancel("c")))
        play.server(done("r1", "call_a")).expect(passes(done("r1", "call_a")))
        play.client(create("d")).expect(passes(create("d")))


def test_observe_mode_reports_what_it_would_do_and_changes_nothing() -> None:
    with Playbook(stage(observe_only=True)) as play:
        play.client(create()).expect(passes(create()))  # no id added either
        play.client(cancel("stop")).expect(CancelHeld("stop", None, applied=False), passes(cancel("stop")))
        play.client(create("b")).expect(
            ResponseHeld("b", "active_response", 1, applied=False), passes(create("b"))
        )
        play.server(created("r1")).expect(passes(created("r1")))
        play.server(done("r1", "call_a", "call_b")).expect(passes(done("r1", "call_a", "call_b")))
        play.client(output("call_b")).expect(passes(output("call_b")))
        play.client(create("x")).expect(
            ResponseHeld("x", "tool_outputs", 1, applied=False), passes(create("x"))
        )
        play.client(create("y")).expect(CreateCoalesced("y", "x", 2, applied=False), passes(create("y")))
        play.server(created("r2")).expect(passes(created("r2")))
        play.server(done("r2")).expect(passes(done("r2")))
        play.client(cancel("late")).expect(
            CancelAbsorbed("late", "response_done", applied=False), passes(cancel("late"))
        )


# -- in the whole core -------------------------------------------------------------------------------


def test_in_the_core_a_released_create_goes_on_and_the_proxys_id_never_reaches_the_client() -> None:
    core = SessionCore(build_chain(), options=CoreOptions(orchestration=OrchestrationOptions()))
    first = with_id(create(), "proxy_evt_1")
    second = with_id(create(instructions="x"), "proxy_evt_2")
    refused = error("invalid_value", "proxy_evt_1")
    with Playbook(core) as play:
        play.client(create()).expect(ToUpstream(frame_of(first)))
        play.client(create(instructions="x")).expect(ResponseHeld("proxy_evt_2", "active_response", 1))
        play.server(refused, now=1.0).expect(
            ResponseReleased("proxy_evt_2", "create_failed", 1.0),
            ToUpstream(frame_of(second)),
            UpstreamError("invalid_request_error", "invalid_value", "m", None, "proxy_evt_1", None),
            ToClient(frame_of(error("invalid_value", None))),
        )
        play.server(created("r2"), now=1.5).expect(Untouched())
        # Response timing starts when the create went upstream (1.0), not when the client sent it.
        play.server(done("r2"), now=2.0).expect(
            ResponseDone("r2", "completed", None, None, 1.0, False, [], "proxy_evt_2"),
            ToClient(frame_of(done("r2"))),
        )


# -- named states ------------------------------------------------------------------------------------


def test_the_named_states_follow_the_table_at_the_head_of_the_module() -> None:
    turns = stage(tool_output_timeout=5.0)
    with Playbook(turns) as play:
        assert turns.state is TurnState.IDLE
        play.client(create("a")).expect(passes(create("a")))
        assert turns.state is TurnState.REQUESTED
        play.server(created("r1")).expect(passes(created("r1")))
        assert turns.state is TurnState.RUNNING
        play.client(cancel("x")).expect(passes(cancel("x")))
        assert turns.state is TurnState.CANCELLING
        play.server(done("r1", "call_1", "call_2"), now=1.0).expect(passes(done("r1", "call_1", "call_2")))
        assert turns.state is TurnState.IDLE  # the turn awaits outputs, but no answer is held yet
        play.client(output("call_1"), now=1.0).expect(passes(output("call_1")))
        play.client(create("b"), now=1.0).expect(
            ResponseHeld("b", "tool_outputs", 1), StartTimer(5.0, "orchestration.tool_outputs")
        )
        assert turns.state is TurnState.AWAITING_OUTPUTS
        play.client(output("call_2"), now=2.0).expect(
            CancelTimer("orchestration.tool_outputs"),
            fwd("client", output("call_2")),
            ResponseReleased("b", "tool_outputs", 1.0),
            fwd("client", create("b")),
        )
        assert turns.state is TurnState.REQUESTED
        play.server(error("conversation_already_has_active_response", "b")).expect(
            ResponseHeld("b", "rejected_as_active", 1)
        )
        assert turns.state is TurnState.UNTOLD
        play.server(done("r_vad"), now=3.0).expect(
            ResponseReleased("b", "response_done", 1.0), fwd("client", create("b")), passes(done("r_vad"))
        )
        assert turns.state is TurnState.REQUESTED

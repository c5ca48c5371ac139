"""The Live core (realtime_proxy.core.live*): the whole action sequence, frame by frame (issue 22).

By default a Live session is relayed untouched: no Realtime rule, turn-taking or retry sees it,
and the observer only reports. A Realtime session core would hold the second response.create
until a response.done that Live never sends; the Live core lets every create go on."""

from __future__ import annotations

from typing import Any

from realtime_proxy.core.actions import ToClient, ToUpstream
from realtime_proxy.core.context import SessionContext, route_of
from realtime_proxy.core.live_observations import (
    LiveDelegatedResponse,
    LiveDelegation,
    LiveEarlyCommand,
    LiveError,
    LiveFirstDelta,
    LiveStarted,
    LiveUsage,
)
from realtime_proxy.core.live_session import LiveSessionCore
from realtime_proxy.core.rules import build_chain
from tests.playbook import Playbook, Untouched, frame_of

LIVE = SessionContext(route="live")
START = {"type": "session.start", "event_id": "s1", "session": {"model": "gpt-live-1"}}
STARTED = {"type": "session.started", "event_id": "e1", "session": {"id": "ls_1", "model": "gpt-live-1"}}
CREATE = {"type": "response.create", "event_id": "c1"}
APPEND = {"type": "session.input_audio.append", "audio": "AAAA"}
AUDIO = {"type": "session.output_audio.delta", "delta": "AAAA"}


def core(**switches: bool) -> LiveSessionCore:
    return LiveSessionCore(build_chain(switches), LIVE)


def wrapped(nested: dict[str, Any], delegation_id: str = "d1") -> dict[str, Any]:
    return {"type": "response.event", "event_id": "e", "delegation_id": delegation_id, "event": nested}


def test_live_paths_classify_as_live() -> None:
    assert route_of("/v1/live/sessions", {}) == "live"
    assert route_of("/v1/live/sessions/", {}) == "live"
    assert route_of("/openai/v1/live/sessions", {}) == "live"
    assert route_of("/v1/live/sessions/ls_1/fork", {}) == "live"
    assert route_of("/v1/realtime", {"model": "gpt-live-1"}) == "realtime"


def test_back_to_back_creates_all_go_upstream_untouched() -> None:
    with Playbook(core()) as play:
        play.client(START, now=0.0).expect(Untouched())
        play.server(STARTED, now=0.1).expect(LiveStarted("ls_1", "gpt-live-1"), ToClient(frame_of(STARTED)))
        play.client(CREATE, now=1.0).expect(Untouched())
        play.client({"type": "response.create", "event_id": "c2"}, now=1.1).expect(Untouched())
        play.client(APPEND).expect(Untouched())
        # A Realtime-shaped event is the API's to refuse: no Realtime rule touches it on Live.
        realtime = {"type": "session.update", "session": {"type": "realtime", "tool_choice": None}}
        play.client(realtime).expect(Untouched())
        play.server(AUDIO).expect(Untouched())
        play.close().expect()


def test_first_delegated_delta_answers_the_oldest_create_and_the_response_ends() -> None:
    created = wrapped({"type": "response.created", "response": {"id": "r1", "model": "gpt-5.2"}})
    delta = wrapped({"type": "response.output_text.delta", "delta": "Hi"})
    usage = {"input_tokens": 12, "output_tokens": 4}
    response = {"id": "r1", "model": "gpt-5.2", "status": "completed", "usage": usage}
    completed = wrapped({"type": "response.completed", "response": response})
    delegation = {
        "type": "session.delegation.created",
        "event_id": "e",
        "delegation": {"id": "d1", "target": "responses", "response_id": "r1", "type": "delegation"},
        "offset_ms": 10,
    }
    with Playbook(core()) as play:
        play.client(CREATE, now=1.0).expect(Untouched())
        play.client({"type": "response.create", "event_id": "c2"}, now=1.5).expect(Untouched())
        play.server(delegation, now=1.25).expect(
            LiveDelegation("d1", "responses", "r1"), ToClient(frame_of(delegation))
        )
        play.server(created, now=1.3).expect(Untouched())
        play.server(delta, now=1.75).expect(
            LiveFirstDelta("response_create", "delegated", 0.75, "c1"), ToClient(frame_of(delta))
        )
        play.server(delta, now=1.8).expect(Untouched())  # not a first delta any more
        play.server(completed, now=2.25).expect(
            LiveDelegatedResponse("d1", "r1", "completed", "gpt-5.2", 12, 4, 1.0),
            ToClient(frame_of(completed)),
        )


def test_user_speech_to_first_output_and_usage_increments() -> None:
    transcript = {"type": "session.input_transcript.delta", "delta": "hi", "start_ms": 0, "end_ms": 300}
    first = {"type": "session.usage.updated", "event_id": "u", "usage": {"seconds": 10}}
    second = {
        "type": "session.usage.updated",
        "event_id": "u",
        "usage": {"seconds": 25, "active_seconds": 20, "paused_seconds": 5},
        "context_window": {"usage_ratio": 0.25},
    }
    with Playbook(core()) as play:
        play.client(START).expect(Untouched())
        play.server(transcript, now=2.0).expect(Untouched())
        play.server(transcript, now=2.5).expect(Untouched())  # the latest fragment counts
        play.server(AUDIO, now=3.0).expect(
            LiveFirstDelta("user_speech", "audio", 0.5), ToClient(frame_of(AUDIO))
        )
        play.server(AUDIO, now=3.0).expect(Untouched())
        play.server(first).expect(LiveUsage("gpt-live-1", 10.0, 10.0, 0.0, None), ToClient(frame_of(first)))
        play.server(second).expect(LiveUsage("gpt-live-1", 25.0, 10.0, 5.0, 0.25), ToClient(frame_of(second)))


def test_errors_are_reported_and_a_refused_create_is_not_waited_for() -> None:
    refused = {
        "type": "error",
        "event_id": "e",
        "error": {"type": "invalid_request_error", "code": "function_call_outputs_required",
                  "message": "Submit the pending function call outputs before response.create.",
                  "param": None, "client_event_id": "c1"},
    }  # fmt: skip
    as_string = {"type": "error", "event_id": "e", "error": "boom"}
    with Playbook(core()) as play:
        play.client(CREATE, now=1.0).expect(Untouched())
        play.server(refused).expect(
            LiveError("invalid_request_error", "function_call_outputs_required",
                      "Submit the pending function call outputs before response.create.", None, "c1"),
            ToClient(frame_of(refused)),
        )  # fmt: skip
        # Nothing is waiting any more: a later delta measures nothing.
        play.server(wrapped({"type": "response.output_text.delta"}), now=3.0).expect(Untouched())
        play.server(as_string).expect(
            LiveError(None, None, "boom", None, None), ToClient(frame_of(as_string))
        )


def test_start_gate_off_only_reports_early_commands() -> None:
    with Playbook(core()) as play:
        play.client(CREATE).expect(Untouched())  # before session.start: the API answers it
        play.client(START).expect(Untouched())
        play.client(CREATE).expect(
            LiveEarlyCommand("response.create", "c1", False, 0), ToUpstream(frame_of(CREATE))
        )
        play.server(STARTED).expect(LiveStarted("ls_1", "gpt-live-1"), ToClient(frame_of(STARTED)))
        play.client(CREATE).expect(Untouched())


def test_start_gate_on_holds_early_commands_and_releases_them_in_order() -> None:
    with Playbook(core(live_hold_until_started=True)) as play:
        play.client(START).expect(Untouched())
        play.client(APPEND).expect(LiveEarlyCommand("session.input_audio.append", None, True, 1))
        play.client(CREATE).expect(LiveEarlyCommand("response.create", "c1", True, 2))
        play.server(STARTED).expect(
            ToUpstream(frame_of(APPEND)),
            ToUpstream(frame_of(CREATE)),
            LiveStarted("ls_1", "gpt-live-1"),
            ToClient(frame_of(STARTED)),
        )
        play.client(CREATE).expect(Untouched())
        play.close().expect()


def test_start_gate_releases_on_an_error_and_is_bounded() -> None:
    detail = {
        "type": "invalid_request_error",
        "code": "invalid_model",
        "message": "m",
        "param": "session.model",
    }
    error = {"type": "error", "event_id": "e", "error": {**detail, "client_event_id": "s1"}}
    with Playbook(core(live_hold_until_started=True)) as play:
        play.client(START).expect(Untouched())
        for n in range(64):
            play.client(APPEND).expect(LiveEarlyCommand("session.input_audio.append", None, True, n + 1))
        play.client(APPEND).expect(
            LiveEarlyCommand("session.input_audio.append", None, False, 64), ToUpstream(frame_of(APPEND))
        )
        step = play.server(error)
        assert step.actions[:64] == [ToUpstream(frame_of(APPEND))] * 64
        step.expect(
            *[ToUpstream(frame_of(APPEND))] * 64,
            LiveError("invalid_request_error", "invalid_model", "m", "session.model", "s1"),
            ToClient(frame_of(error)),
        )


def test_realtime_function_output_becomes_a_response_item_when_the_rule_is_on() -> None:
    sent = {
        "type": "conversation.item.create",
        "event_id": "i1",
        "previous_item_id": None,
        "item": {
            "type": "function_call_output",
            "call_id": "call_1",
            "output": '{"ok":true}',
            "id": "item_1",
        },
    }
    want = {
        "type": "response.item.create",
        "event_id": "i1",
        "item": {"type": "function_call_output", "call_id": "call_1", "output": '{"ok":true}'},
    }
    with Playbook(core()) as play:  # off by default: the API's invalid_value is the answer
        play.client(sent).expect(Untouched())
    with Playbook(core(live_function_output_item=True)) as play:
        step = play.client(sent)
        assert [type(a).__name__ for a in step.actions] == ["Rewrite", "ToUpstream"]
        rewrite = step.actions[0]
        assert (rewrite.rule, rewrite.path, rewrite.count, rewrite.applied) == (
            "live_function_output_item", "type", 3, True
        )  # fmt: skip
        step.expect(rewrite, ToUpstream(frame_of(want)))
        message = {
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "user", "content": []},
        }
        play.client(message).expect(Untouched())  # no certain Live equivalent: left to the API

"""The retry stage alone: how it adapts the retrier to the pipeline (what it tags, holds, ends and
forwards); the retrier's own state machine has its playbooks in tests/unit/test_retry.py."""

from __future__ import annotations

import random
from typing import Any

from realtime_proxy.core.actions import CancelTimer, RetryAttempt, RetryOutcome, StartTimer
from realtime_proxy.core.retry import METADATA_KEY, ResponseRetrier, RetryPolicy
from realtime_proxy.core.stage import Forward, Message
from tests.playbook import Passes, Playbook, frame_of

OOB = {"type": "response.create", "event_id": "c1", "response": {"conversation": "none"}}
TAGGED = {**OOB, "response": {"conversation": "none", "metadata": {METADATA_KEY: "rp1"}}}


def response(status: str, **extra: Any) -> dict[str, Any]:
    return {"id": "r1", "status": status, "conversation_id": None, "metadata": {METADATA_KEY: "rp1"}, **extra}


def stage() -> ResponseRetrier:
    return ResponseRetrier(RetryPolicy(), random.Random(1))


def test_in_band_create_and_other_events_pass_untouched() -> None:
    create = '{"type":"response.create","response":{"conversation":"auto"}}'
    delta = '{"type":"response.output_audio.delta","response_id":"r9","delta":"AAAA"}'
    with Playbook(stage()) as play:
        play.client(create).expect(Passes(create))
        play.server(delta).expect(Passes(delta))  # nothing tracked: the hot path is untouched


def test_out_of_band_create_is_tagged_and_its_created_held_until_output() -> None:
    created = {"type": "response.created", "response": response("in_progress")}
    delta = '{"type":"response.output_text.delta","response_id":"r1","delta":"hi"}'
    restored = {"type": "response.created", "response": {**response("in_progress"), "metadata": None}}
    with Playbook(stage()) as play:
        play.client(OOB).expect(Passes(frame_of(TAGGED)))
        play.server(created).expect()  # held: nothing goes to the client yet
        released = play.server(delta).expect(
            Forward(Message("server", frame_of(restored), "response.created")),
            Passes(delta),  # the output event itself goes on as received, after the created
        )
    # The stages after this one route what it forwards by type (`Message.__eq__` compares bytes),
    # and it carries its parse (built from the dict, never re-sniffed).
    (forward, _) = released.actions
    assert (forward.message.type, forward.message.event) == ("response.created", restored)


def test_a_transient_failure_is_swallowed_and_resent_on_the_timer() -> None:
    failed = {
        "type": "response.done",
        "response": response(
            "failed", status_details={"type": "failed", "error": {"type": "server_error"}}, output=[]
        ),
    }
    with Playbook(stage()) as play:
        play.client(OOB, now=0.0).expect(Passes(frame_of(TAGGED)))
        step = play.server(failed, now=1.0)
        delay = step.actions[0].delay
        step.expect(StartTimer(delay, "rp1"), RetryAttempt(2, delay, "r1", "server_error", None, "c1"))
        resent = {**TAGGED, "event_id": "rp1_a2"}
        # On through the client stages after this one (tracking, state), then upstream.
        step = play.timer("rp1", now=1.0 + delay).expect(Forward(Message("client", frame_of(resent), None)))
        assert (step.actions[0].message.type, step.actions[0].message.event) == ("response.create", resent)
        play.close(now=3.0).expect(RetryOutcome("cancelled", 2, 2.0, None, "c1", "client_closed"))


FAILED = {
    "type": "response.done",
    "response": response(
        "failed", status_details={"type": "failed", "error": {"type": "server_error"}}, output=[]
    ),
}


def test_a_cancel_during_the_backoff_is_answered_here_and_the_resend_dropped() -> None:
    cancel = {"type": "response.cancel", "event_id": "x1", "response_id": "r1"}
    cancelled = {
        "type": "response.done",
        "response": {
            **response("cancelled"),
            "metadata": None,
            "status_details": {"type": "cancelled", "reason": "client_cancelled"},
            "output": [],
        },
    }
    with Playbook(stage()) as play:
        play.client(OOB, now=0.0).expect(Passes(frame_of(TAGGED)))
        step = play.server(FAILED, now=1.0)
        delay = step.actions[0].delay
        step.expect(StartTimer(delay, "rp1"), RetryAttempt(2, delay, "r1", "server_error", None, "c1"))
        answered = play.client(cancel, now=1.5).expect(  # nothing runs upstream: the cancel goes no further
            CancelTimer("rp1"),
            Forward(Message("server", frame_of(cancelled), None)),
            RetryOutcome("cancelled", 1, 0.5, "r1", "c1", "client_cancelled"),
        )
        # Typed like the API's frames (the nested "type" in status_details must not hide it), so
        # a later stage that declares response.done sees it.
        assert [a.message.type for a in answered.actions if isinstance(a, Forward)] == ["response.done"]
        play.timer("rp1", now=2.0).expect()  # a timer that fires anyway re-sends nothing
        play.close(now=3.0).expect()


def test_a_cancel_of_a_running_or_unknown_response_goes_upstream() -> None:
    created = {"type": "response.created", "response": response("in_progress")}
    cancel_running = frame_of({"type": "response.cancel", "response_id": "r1"})
    cancel_unknown = frame_of({"type": "response.cancel", "response_id": "r7"})
    with Playbook(stage()) as play:
        play.client(OOB, now=0.0).expect(Passes(frame_of(TAGGED)))
        play.server(created, now=0.5).expect()
        play.client(cancel_unknown, now=0.6).expect(Passes(cancel_unknown))
        play.client(cancel_running, now=0.7).expect(Passes(cancel_running))
        # The client cancelled it: its failure is not retried but delivered, the held created first.
        untagged = {"metadata": None}
        play.server(FAILED, now=1.0).expect(
            Forward(
                Message(
                    "server", frame_of({**created, "response": {**created["response"], **untagged}}), None
                )
            ),
            RetryOutcome("cancelled", 1, 0.0, "r1", "c1", "client_cancelled"),
            Passes(frame_of({**FAILED, "response": {**FAILED["response"], **untagged}})),
        )

"""The tracking stage: it only observes (every frame passes unchanged); what it observes, exactly."""

from __future__ import annotations

from realtime_proxy.core.actions import FirstDelta, RateLimits, ResponseDone
from realtime_proxy.core.tracker import ResponseTracker
from realtime_proxy.core.tracking import TrackingStage
from tests.playbook import Passes, Playbook, frame_of

CREATED = frame_of({"type": "response.created", "response": {"id": "r1", "conversation_id": "c"}})
DELTA = frame_of({"type": "response.output_text.delta", "response_id": "r1", "delta": "hi"})
DONE = frame_of(
    {"type": "response.done", "response": {"id": "r1", "status": "completed", "conversation_id": "c"}}
)


def test_a_response_is_timed_from_create_to_first_delta_and_done() -> None:
    create = '{"type":"response.create","event_id":"c1"}'
    with Playbook(TrackingStage(ResponseTracker())) as play:
        play.client(create, now=10.0).expect(Passes(create))
        play.server(CREATED, now=10.1).expect(Passes(CREATED))
        play.server(DELTA, now=10.25).expect(FirstDelta("r1", "text", 0.25), Passes(DELTA))
        play.server(DELTA, now=10.3).expect(Passes(DELTA))  # only the first delta counts
        play.server(DONE, now=11.0).expect(
            ResponseDone("r1", "completed", None, None, 1.0, False, [], client_event_id="c1"), Passes(DONE)
        )


def test_a_rejected_create_does_not_shift_the_timing_of_the_next() -> None:
    error = frame_of({"type": "error", "error": {"type": "invalid_request_error", "event_id": "bad"}})
    with Playbook(TrackingStage(ResponseTracker())) as play:
        play.client('{"type":"response.create","event_id":"bad"}', now=1.0).expect(
            Passes('{"type":"response.create","event_id":"bad"}')
        )
        play.server(error, now=1.1).expect(Passes(error))
        play.client('{"type":"response.create","event_id":"good"}', now=5.0).expect(
            Passes('{"type":"response.create","event_id":"good"}')
        )
        play.server(CREATED, now=5.5).expect(Passes(CREATED))
        play.server(DELTA, now=6.0).expect(FirstDelta("r1", "text", 1.0), Passes(DELTA))


def test_rate_limits_are_observed() -> None:
    limits = [{"name": "tokens", "limit": 100, "remaining": 50, "reset_seconds": 1.0}]
    frame = frame_of({"type": "rate_limits.updated", "rate_limits": limits})
    with Playbook(TrackingStage(ResponseTracker())) as play:
        play.server(frame).expect(RateLimits(limits), Passes(frame))


def test_only_response_create_starts_the_clock() -> None:
    update = '{"type":"session.update","event_id":"s1","session":{}}'
    create = '{"type":"response.create","event_id":"c1"}'
    with Playbook(TrackingStage(ResponseTracker())) as play:
        play.client(update, now=0.0).expect(Passes(update))  # not a create: no clock started
        play.client(create, now=5.0).expect(Passes(create))
        play.server(CREATED, now=5.5).expect(Passes(CREATED))
        play.server(DELTA, now=6.0).expect(FirstDelta("r1", "text", 1.0), Passes(DELTA))


def test_a_response_the_client_did_not_create_is_timed_from_its_created() -> None:
    with Playbook(TrackingStage(ResponseTracker())) as play:
        play.server(CREATED, now=2.0).expect(Passes(CREATED))  # e.g. server VAD started it
        play.server(DELTA, now=2.5).expect(FirstDelta("r1", "text", 0.5), Passes(DELTA))


def test_a_delta_of_another_response_while_one_awaits_its_first_is_not_observed() -> None:
    other = frame_of({"type": "response.output_text.delta", "response_id": "r2", "delta": "x"})
    with Playbook(TrackingStage(ResponseTracker())) as play:
        play.server(CREATED, now=1.0).expect(Passes(CREATED))
        play.server(other, now=1.5).expect(Passes(other))
        play.server(DELTA, now=2.0).expect(FirstDelta("r1", "text", 1.0), Passes(DELTA))


def test_malformed_created_and_error_events_are_passed_on_without_observations() -> None:
    no_id = frame_of({"type": "response.created", "response": {"status": "in_progress"}})
    number_id = frame_of({"type": "response.created", "response": {"id": 7}})
    string_error = frame_of({"type": "error", "error": "overloaded"})
    create = '{"type":"response.create","event_id":"c1"}'
    with Playbook(TrackingStage(ResponseTracker())) as play:
        play.client(create, now=1.0).expect(Passes(create))
        play.server(no_id, now=1.1).expect(Passes(no_id))
        play.server(number_id, now=1.2).expect(Passes(number_id))
        play.server(string_error, now=1.3).expect(Passes(string_error))
        # The pending create was neither taken by the malformed createds nor dropped by the error.
        play.server(CREATED, now=1.5).expect(Passes(CREATED))
        play.server(DELTA, now=3.0).expect(FirstDelta("r1", "text", 2.0), Passes(DELTA))

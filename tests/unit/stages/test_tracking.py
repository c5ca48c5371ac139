"""The tracking stage: it only observes (every frame passes unchanged); what it observes, exactly."""

from __future__ import annotations

from proxy.core.actions import FirstDelta, RateLimits, ResponseDone
from proxy.core.tracker import ResponseTracker
from proxy.core.tracking import TrackingStage
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

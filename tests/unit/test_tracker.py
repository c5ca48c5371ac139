"""The tracking stage (realtime_proxy.core.tracker): it only observes, every frame passes unchanged;
what it observes, exactly. Driven through a pipeline of this one stage, so the ledger it reads is
kept as in a session (creates recorded at the client lane's exit, responses bound before it runs)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from realtime_proxy.core.actions import FirstDelta, RateLimits, ResponseDone, ToClient
from realtime_proxy.core.pipeline import Pipeline
from realtime_proxy.core.responses import Ledger, Response
from realtime_proxy.core.tracker import TrackingStage, response_done, token_counts
from realtime_proxy.core.traffic import TrafficCounts
from tests.playbook import Playbook, Untouched, frame_of

CREATED = frame_of({"type": "response.created", "response": {"id": "r1", "conversation_id": "c"}})
DELTA = frame_of({"type": "response.output_text.delta", "response_id": "r1", "delta": "hi"})
DONE = frame_of(
    {"type": "response.done", "response": {"id": "r1", "status": "completed", "conversation_id": "c"}}
)


def tracking() -> Pipeline:
    stage = TrackingStage(Ledger())
    return Pipeline((stage,), (stage,), TrafficCounts(), ledger=stage.ledger, max_parse_bytes=1 << 20)


def test_a_response_is_timed_from_create_to_first_delta_and_done() -> None:
    create = '{"type":"response.create","event_id":"c1"}'
    with Playbook(tracking()) as play:
        play.client(create, now=10.0).expect(Untouched())
        play.server(CREATED, now=10.1).expect(Untouched())
        play.server(DELTA, now=10.25).expect(FirstDelta("r1", "text", 0.25), ToClient(DELTA))
        play.server(DELTA, now=10.3).expect(Untouched())  # only the first delta counts
        play.server(DONE, now=11.0).expect(
            ResponseDone("r1", "completed", None, None, 1.0, False, [], client_event_id="c1"), ToClient(DONE)
        )


def test_a_rejected_create_does_not_shift_the_timing_of_the_next() -> None:
    error = frame_of({"type": "error", "error": {"type": "invalid_request_error", "event_id": "bad"}})
    with Playbook(tracking()) as play:
        play.client('{"type":"response.create","event_id":"bad"}', now=1.0).expect(Untouched())
        play.server(error, now=1.1).expect(Untouched())
        play.client('{"type":"response.create","event_id":"good"}', now=5.0).expect(Untouched())
        play.server(CREATED, now=5.5).expect(Untouched())
        play.server(DELTA, now=6.0).expect(FirstDelta("r1", "text", 1.0), ToClient(DELTA))


def test_rate_limits_are_observed() -> None:
    limits = [{"name": "tokens", "limit": 100, "remaining": 50, "reset_seconds": 1.0}]
    frame = frame_of({"type": "rate_limits.updated", "rate_limits": limits})
    with Playbook(tracking()) as play:
        play.server(frame).expect(RateLimits(limits), ToClient(frame))


def test_only_response_create_starts_the_clock() -> None:
    update = '{"type":"session.update","event_id":"s1","session":{}}'
    create = '{"type":"response.create","event_id":"c1"}'
    with Playbook(tracking()) as play:
        play.client(update, now=0.0).expect(Untouched())  # not a create: no clock started
        play.client(create, now=5.0).expect(Untouched())
        play.server(CREATED, now=5.5).expect(Untouched())
        play.server(DELTA, now=6.0).expect(FirstDelta("r1", "text", 1.0), ToClient(DELTA))


def test_a_response_the_client_did_not_create_is_timed_from_its_created() -> None:
    with Playbook(tracking()) as play:
        play.server(CREATED, now=2.0).expect(Untouched())  # e.g. server VAD started it
        play.server(DELTA, now=2.5).expect(FirstDelta("r1", "text", 0.5), ToClient(DELTA))


def test_a_delta_of_another_response_while_one_awaits_its_first_is_not_observed() -> None:
    other = frame_of({"type": "response.output_text.delta", "response_id": "r2", "delta": "x"})
    audio = frame_of({"type": "response.output_audio.delta", "response_id": "r1", "delta": "AAAA"})
    with Playbook(tracking()) as play:
        play.server(CREATED, now=1.0).expect(Untouched())
        play.server(other, now=1.5).expect(Untouched())
        play.server(b"binary", now=1.6).expect(Untouched())
        play.server(audio, now=2.0).expect(FirstDelta("r1", "audio", 1.0), ToClient(audio))
        play.server(DONE, now=3.0).expect(
            ResponseDone("r1", "completed", None, None, 2.0, False, []), ToClient(DONE)
        )


def test_done_ends_the_wait_for_a_first_delta() -> None:
    with Playbook(tracking()) as play:
        play.server(CREATED, now=1.0).expect(Untouched())
        play.server(DONE, now=2.0).expect(
            ResponseDone("r1", "completed", None, None, 1.0, False, []), ToClient(DONE)
        )
        play.server(DELTA, now=2.5).expect(Untouched())  # a late delta is not a first delta


def test_malformed_created_and_error_events_are_passed_on_without_observations() -> None:
    no_id = frame_of({"type": "response.created", "response": {"status": "in_progress"}})
    number_id = frame_of({"type": "response.created", "response": {"id": 7}})
    string_error = frame_of({"type": "error", "error": "overloaded"})
    create = '{"type":"response.create","event_id":"c1"}'
    with Playbook(tracking()) as play:
        play.client(create, now=1.0).expect(Untouched())
        play.server(no_id, now=1.1).expect(Untouched())
        play.server(number_id, now=1.2).expect(Untouched())
        play.server(string_error, now=1.3).expect(Untouched())
        # The pending create was neither taken by the malformed createds nor dropped by the error.
        play.server(CREATED, now=1.5).expect(Untouched())
        play.server(DELTA, now=3.0).expect(FirstDelta("r1", "text", 2.0), ToClient(DELTA))


def test_responses_awaiting_a_first_delta_are_bounded() -> None:
    core = tracking()
    for n in range(65):
        core.from_upstream(frame_of({"type": "response.created", "response": {"id": f"r{n}"}}), 0.0)
    first = frame_of({"type": "response.output_text.delta", "response_id": "r0", "delta": "x"})
    second = frame_of({"type": "response.output_text.delta", "response_id": "r1", "delta": "x"})
    assert core.from_upstream(first, 1.0) is None
    assert core.from_upstream(second, 1.0) == [FirstDelta("r1", "text", 1.0), ToClient(second)]


FAILED_DONE = {
    "type": "response.done",
    "response": {
        "id": "resp_1",
        "status": "failed",
        "status_details": {"type": "failed", "error": {"type": "server_error", "code": "boom"}},
        "conversation_id": None,
        "usage": {"output_token_details": {"text_tokens": 1}},
    },
}


def test_done_reports_the_whole_response() -> None:
    about = Response("resp_1", False, None, 1.0)
    assert response_done(FAILED_DONE, about, 3.0) == ResponseDone(
        response_id="resp_1",
        status="failed",
        error_type="server_error",
        error_code="boom",
        seconds=2.0,
        out_of_band=True,
        tokens=[("output", "text", False, 1)],
        client_event_id=None,
    )


def test_a_done_is_in_band_as_its_response_was_created() -> None:
    about = Response("resp_1", True, None, 1.0)  # a failed done may carry conversation_id null
    assert response_done(FAILED_DONE, about, 3.0).out_of_band is False


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("not an object", {}),
        ({"id": 5, "status": 7, "conversation_id": "conv_1"}, {}),
        ({"id": "r", "status_details": {"error": "x"}}, {"response_id": "r"}),
        (
            {"id": "r", "status_details": "x", "status": "completed"},
            {"response_id": "r", "status": "completed"},
        ),
        ({"id": "r", "conversation_id": None}, {"response_id": "r", "out_of_band": True}),
        (
            {"status": "cancelled", "status_details": {"type": "cancelled", "reason": "client_cancelled"}},
            {"status": "cancelled", "reason": "client_cancelled"},
        ),
        ({"status_details": {"reason": 5}}, {}),
    ],
)
def test_done_tolerates_odd_shapes(response: Any, expected: dict[str, Any]) -> None:
    fields = dataclasses.asdict(response_done({"type": "response.done", "response": response}, None, 1.0))
    assert fields == {
        "response_id": None,
        "status": None,
        "error_type": None,
        "error_code": None,
        "seconds": None,
        "out_of_band": False,
        "tokens": [],
        "client_event_id": None,
        "reason": None,
        **expected,
    }


def test_token_counts_split_cached_input_per_modality() -> None:
    usage = {
        "input_token_details": {
            "text_tokens": 10,
            "audio_tokens": 5,
            "image_tokens": 3,
            "cached_tokens_details": {"text_tokens": 4, "audio_tokens": 9, "image_tokens": 1},
        },
        "output_token_details": {"text_tokens": 1, "audio_tokens": 7},
    }
    assert token_counts(usage) == [
        ("input", "text", False, 6),
        ("input", "text", True, 4),
        ("input", "audio", True, 5),  # cached never exceeds the total
        ("input", "image", False, 2),
        ("input", "image", True, 1),
        ("output", "text", False, 1),
        ("output", "audio", False, 7),
    ]


@pytest.mark.parametrize(
    "usage",
    [
        None,
        {"input_token_details": ["x"], "output_token_details": 5},
        {"input_token_details": {"text_tokens": -3, "cached_tokens_details": "x"}},
        {"input_token_details": {"text_tokens": "9", "audio_tokens": 0}},
    ],
)
def test_token_counts_ignore_what_is_not_a_positive_count(usage: Any) -> None:
    assert token_counts(usage) == []

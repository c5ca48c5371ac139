"""tracker: per-response timing and token usage, asserted as whole observations. Pure."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from realtime_proxy.core.actions import FirstDelta, ResponseDone
from realtime_proxy.core.events import dump
from realtime_proxy.core.tracker import ResponseTracker, token_counts


def delta(response_id: str, event_type: str = "response.output_text.delta") -> str:
    return dump({"type": event_type, "event_id": "e", "response_id": response_id, "delta": "x"})


def test_first_delta_is_timed_from_the_matching_create_once() -> None:
    tracker = ResponseTracker()
    tracker.on_client_create("evt_1", 1.0)
    tracker.on_created("resp_1", 1.5)
    assert tracker.awaiting_delta
    observation = tracker.on_delta("response.output_audio.delta", delta("resp_1"), 2.25)
    assert observation is not None
    assert observation == FirstDelta("resp_1", "audio", 1.25)
    assert not tracker.awaiting_delta
    assert tracker.on_delta("response.output_text.delta", delta("resp_1"), 3.0) is None


@pytest.mark.parametrize(
    ("event_type", "frame"),
    [
        ("response.output_item.added", delta("resp_1")),  # not a delta: no modality
        ("response.output_text.delta", delta("resp_1").encode()),  # binary frames are not events
        ("response.output_text.delta", delta("resp_other")),
    ],
)
def test_only_a_text_delta_of_an_awaited_response_counts(event_type: str, frame: str | bytes) -> None:
    tracker = ResponseTracker()
    tracker.on_created("resp_1", 0.0)
    assert tracker.on_delta(event_type, frame, 1.0) is None
    assert tracker.awaiting_delta


def test_a_response_created_without_a_pending_create_starts_now() -> None:
    tracker = ResponseTracker()
    tracker.on_created("resp_1", 4.0)
    assert tracker.on_done({"response": {"id": "resp_1", "status": "completed"}}, 5.0).seconds == 1.0


def test_rejected_creates_leave_the_queue_and_only_they_do() -> None:
    tracker = ResponseTracker()
    for event_id, now in (("a", 1.0), ("b", 2.0), (None, 3.0), ("c", 4.0)):
        tracker.on_client_create(event_id, now)
    tracker.on_client_create_rejected("b")
    tracker.on_client_create_rejected(None)  # an error without an event id names no create
    tracker.on_client_create_rejected("zzz")
    for response_id in ("r_a", "r_none", "r_c"):
        tracker.on_created(response_id, 10.0)
    seconds = [tracker.on_done({"response": {"id": r}}, 10.0).seconds for r in ("r_a", "r_none", "r_c")]
    assert seconds == [9.0, 7.0, 6.0]


def test_pending_creates_are_bounded_to_the_newest_64() -> None:
    tracker = ResponseTracker()
    for index in range(65):
        tracker.on_client_create(f"evt_{index}", float(index))
    tracker.on_created("resp_1", 100.0)
    assert tracker.on_done({"response": {"id": "resp_1"}}, 100.0).seconds == 99.0  # evt_0 went


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
    tracker = ResponseTracker()
    tracker.on_client_create("evt_1", 1.0)
    tracker.on_created("resp_1", 1.5)
    observation = tracker.on_done(FAILED_DONE, 3.0)
    assert observation == ResponseDone(
        response_id="resp_1",
        status="failed",
        error_type="server_error",
        error_code="boom",
        seconds=2.0,
        out_of_band=True,
        tokens=[("output", "text", False, 1)],
        client_event_id="evt_1",
    )
    assert not tracker.awaiting_delta  # done without a delta: not awaited any more


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
    fields = dataclasses.asdict(
        ResponseTracker().on_done({"type": "response.done", "response": response}, 1.0)
    )
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

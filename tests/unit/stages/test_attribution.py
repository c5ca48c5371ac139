"""The attribution stage: upstream errors named after the client event (and the rules) they concern."""

from __future__ import annotations

from realtime_proxy.core.actions import UpstreamError
from realtime_proxy.core.attribution import AttributionStage
from realtime_proxy.core.responses import Ledger
from tests.playbook import Passes, Playbook, frame_of


def error(event_id: str | None, code: str = "unknown_parameter") -> dict:  # type: ignore[type-arg]
    return {
        "type": "error",
        "event_id": "srv_1",
        "error": {
            "type": "invalid_request_error",
            "code": code,
            "message": "m",
            "param": "p",
            "event_id": event_id,
        },
    }


def test_error_about_a_rewritten_client_event_names_its_rules() -> None:
    ids = Ledger()
    ids.remember_rules("c1", ["drop_temperature"])
    with Playbook(AttributionStage(ids)) as play:
        play.server(error("c1")).expect(
            UpstreamError("invalid_request_error", "unknown_parameter", "m", "p", "c1", ["drop_temperature"]),
            Passes(frame_of(error("c1"))),
        )


def test_the_proxys_own_id_reaches_every_stage_unchanged() -> None:
    """Mapped back to the client's only at the server lane's exit (the pipeline's `_exit`)."""
    ids = Ledger()
    own = ids.issue()
    ids.remember_rules(own, ["session_type_missing"])
    with Playbook(AttributionStage(ids)) as play:
        play.server(error(own)).expect(
            UpstreamError(
                "invalid_request_error", "unknown_parameter", "m", "p", own, ["session_type_missing"]
            ),
            Passes(frame_of(error(own))),
        )


def test_error_about_an_untouched_event_passes_byte_for_byte() -> None:
    frame = '{"type": "error", "error": {"type": "server_error", "code": null, "message": "x"}}'
    with Playbook(AttributionStage(Ledger())) as play:
        play.server(frame).expect(UpstreamError("server_error", None, "x", None, None, None), Passes(frame))


def test_memory_is_bounded_to_the_most_recent_events() -> None:
    ids = Ledger()
    for n in range(300):
        ids.remember_rules(f"e{n}", ["r"])
    assert ids.rules_for("e43") is None and ids.rules_for("e44") == ["r"] and ids.rules_for("e299") == ["r"]
    assert ids.rules_for(7) is None


def test_an_error_whose_error_is_not_an_object_is_observed_as_unnamed() -> None:
    frame = '{"type":"error","error":"overloaded"}'
    with Playbook(AttributionStage(Ledger())) as play:
        play.server(frame).expect(UpstreamError(None, None, None, None, None, None), Passes(frame))


def test_an_error_naming_a_client_event_by_a_non_string_id_names_no_rules() -> None:
    ids = Ledger()
    ids.remember_rules("c1", ["drop_temperature"])
    frame = frame_of({"type": "error", "error": {"type": "invalid_request_error", "event_id": ["c1"]}})
    with Playbook(AttributionStage(ids)) as play:
        play.server(frame).expect(
            UpstreamError("invalid_request_error", None, None, None, ["c1"], None), Passes(frame)
        )

"""The beta translation stage: beta event types up to GA, server events back to the beta shape."""

from __future__ import annotations

from realtime_proxy.core.actions import BetaTranslated
from realtime_proxy.core.compat.stage import BetaStage
from realtime_proxy.core.stage import Replace
from tests.playbook import Passes, Playbook, frame_of, message


def test_beta_only_session_field_is_dropped_on_the_way_up() -> None:
    event = {"type": "session.update", "session": {"type": "realtime", "client_secret": {"value": "ek_x"}}}
    with Playbook(BetaStage()) as play:
        play.client(event).expect(
            BetaTranslated("client_to_ga", "session.client_secret", "(dropped)"),
            Passes(frame_of({"type": "session.update", "session": {"type": "realtime"}})),
        )


def test_ga_event_types_are_renamed_for_the_beta_client_without_parsing() -> None:
    delta = '{"type":"response.output_audio.delta","response_id":"r","delta":"AAAA"}'
    with Playbook(BetaStage()) as play:
        play.server(delta).expect(
            Passes(delta.replace("response.output_audio.delta", "response.audio.delta"))
        )


def test_ga_only_events_are_withheld_from_a_beta_client() -> None:
    with Playbook(BetaStage()) as play:
        play.server('{"type":"conversation.item.done","item":{}}').expect()


def test_events_the_beta_api_shares_pass_byte_for_byte() -> None:
    frame = '{"type": "input_audio_buffer.speech_started", "audio_start_ms": 5}'
    with Playbook(BetaStage()) as play:
        play.server(frame).expect(Passes(frame))


def test_a_translated_client_event_goes_on_under_its_ga_type() -> None:
    """Later stages route the message by its type: after translation that is the GA one."""
    msg = message(
        "client", {"type": "transcription_session.update", "event_id": "e1", "session": {"include": []}}
    )
    actions = BetaStage().on_client(msg, 0.0)
    ga = {"type": "session.update", "event_id": "e1", "session": {"include": [], "type": "transcription"}}
    assert actions == [
        BetaTranslated("client_to_ga", "transcription_session.update", "session.update"),
        Replace(ga),
    ]
    msg.replace(ga)  # what the pipeline does with the decision
    assert (msg.type, msg.out()) == ("session.update", frame_of(ga))


def test_a_renamed_server_event_keeps_its_bytes_apart_from_the_type() -> None:
    delta = '{"type": "response.output_audio.delta", "response_id": "r", "delta": "AAAA"}'
    with Playbook(BetaStage()) as play:
        play.server(delta).expect(Passes(delta.replace("output_audio.delta", "audio.delta")))

from __future__ import annotations

import pytest

from realtime_proxy.core.session_state import SessionState, b64_span_len, bytes_per_ms

TOOL = {"type": "function", "name": "f", "parameters": {}}


def session_event(**audio: object) -> dict[str, object]:
    return {"type": "session.created", "session": {"type": "realtime", "tools": [TOOL], "audio": audio}}


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ({"type": "audio/pcm", "rate": 24000}, 48.0),
        ({"type": "audio/pcm"}, 48.0),
        ({"type": "audio/pcmu"}, 8.0),
        ({"type": "audio/pcma"}, 8.0),
        ({"type": "audio/pcm", "rate": "x"}, None),
        ("pcm16", None),
        (None, None),
    ],
)
def test_bytes_per_ms(fmt: object, expected: float | None) -> None:
    assert bytes_per_ms(fmt) == expected


def test_b64_span_len() -> None:
    assert b64_span_len('{"type":"response.output_audio.delta","delta":"QUJD","item_id":"i"}') == 4
    assert b64_span_len('{"delta" : "QUJDRA=="}') == 8
    assert b64_span_len('{"delta":""}') == 0
    assert b64_span_len('{"type":"x"}') == 0
    assert b64_span_len('{"delta":5}') == 0


def test_session_created_sets_facts() -> None:
    state = SessionState()
    event = session_event(
        input={"format": {"type": "audio/pcmu"}},
        output={"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin"},
    )
    state.observe_server("session.created", event, "")
    assert state.session_type == "realtime"
    assert state.session_tools == [TOOL]
    assert state.voice == "marin"
    assert (state.input_bytes_per_ms, state.output_bytes_per_ms) == (8.0, 48.0)


def test_defaults_are_upper_bound_rates() -> None:
    state = SessionState()
    assert state.input_bytes_per_ms == state.output_bytes_per_ms == 8.0
    assert state.session_tools == [] and state.session_type is None
    assert not state.assistant_audio_produced and state.ledger.active_in_band is None


def test_client_session_update_tools_tracked_optimistically() -> None:
    state = SessionState()
    assert "session.update" in SessionState.CLIENT_PARSED_TYPES
    state.observe_client("session.update", {"type": "session.update", "session": {"tools": [TOOL, 5]}}, "")
    assert state.session_tools == [TOOL]


def test_append_accounting_and_resets() -> None:
    state = SessionState()
    frame = "A" * 1000
    state.observe_client("input_audio_buffer.append", None, frame)
    assert state.appended_audio_ms_upper_bound == pytest.approx(1000 * 0.75 / 8)
    # A server commit nobody asked for (server VAD) covers an unknown part of the buffer: no reset.
    state.observe_server("input_audio_buffer.committed", None, "")
    assert state.appended_audio_ms_upper_bound == pytest.approx(1000 * 0.75 / 8)
    for request, answer in (
        ("input_audio_buffer.commit", "input_audio_buffer.committed"),
        ("input_audio_buffer.clear", "input_audio_buffer.cleared"),
    ):
        state.observe_client("input_audio_buffer.append", None, frame)
        state.observe_client(request, None, "")
        state.observe_client("input_audio_buffer.append", None, frame.encode())  # after the reset point
        state.observe_server(answer, None, "")
        assert state.appended_audio_ms_upper_bound == pytest.approx(1000 * 0.75 / 8)


def test_output_audio_delivered_per_item() -> None:
    state = SessionState()
    state.observe_server("session.updated", session_event(output={"format": {"type": "audio/pcm"}}), "")
    delta = '{"type":"response.output_audio.delta","item_id":"item_1","delta":"' + "A" * 6400 + '"}'
    state.observe_server("response.output_audio.delta", None, delta)
    state.observe_server("response.output_audio.delta", None, delta.encode())
    assert state.assistant_audio_produced
    assert state.delivered_audio_ms == {"item_1": pytest.approx(200.0)}


def test_delivered_items_bounded() -> None:
    state = SessionState()
    for i in range(300):
        state.observe_server("response.output_audio.delta", None, f'{{"item_id":"i{i}","delta":"AAAA"}}')
    assert len(state.delivered_audio_ms) == 256 and "i299" in state.delivered_audio_ms
    assert "i0" not in state.delivered_audio_ms


@pytest.mark.parametrize(
    "session", [None, 5, {"tools": "x", "audio": 5}, {"audio": {"input": 1, "output": []}}]
)
def test_wrong_types_ignored(session: object) -> None:
    state = SessionState()
    state.observe_server("session.updated", {"session": session}, "")
    state.observe_server("response.created", {"response": 5}, "")
    state.observe_server("response.done", {"response": "x"}, "")
    state.observe_server(None, None, b"\x00")
    state.observe_client("session.update", {"session": 5}, "")
    assert state.session_tools == []

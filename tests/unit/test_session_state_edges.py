"""session_state edges that mutation testing found unguarded: sums that must accumulate, events that
must not be mistaken for others, byte-level robustness. Pure."""

from __future__ import annotations

from typing import Any

import pytest

from realtime_proxy.core.events import dump
from realtime_proxy.core.session_state import MIN_BYTES_PER_MS, SessionState, b64_span_len, bytes_per_ms

TOOL = {"type": "function", "name": "f", "parameters": {}}


def test_a_fresh_state_knows_nothing() -> None:
    state = SessionState()
    assert (state.voice, state.input_format_bytes_per_ms, state.output_format_bytes_per_ms) == (
        None,
        None,
        None,
    )
    assert state.assistant_audio_produced is False and state.ledger.active_in_band is None
    assert state.external_audio_input is False
    assert state.input_bytes_per_ms == state.output_bytes_per_ms == MIN_BYTES_PER_MS


@pytest.mark.parametrize(("rate", "expected"), [(0, None), (-8000, None), (1, 0.002), (8000, 16.0)])
def test_a_pcm_rate_must_be_positive(rate: int, expected: float | None) -> None:
    assert bytes_per_ms({"type": "audio/pcm", "rate": rate}) == expected


def test_an_empty_base64_value_has_length_zero() -> None:
    assert b64_span_len('{"type":"x","delta":"","item_id":"i"}') == 0
    assert b64_span_len('{"type":"x","delta":"QUJD","item_id":"i"}') == 4


def test_appended_audio_accumulates_until_a_commit() -> None:
    state = SessionState()
    append = dump({"type": "input_audio_buffer.append", "audio": "QUJD" * 100})
    for _ in range(3):
        state.observe_client("input_audio_buffer.append", None, append)
    assert state.appended_audio_ms_upper_bound == pytest.approx(3 * len(append) * 0.75 / MIN_BYTES_PER_MS)
    state.observe_client("input_audio_buffer.commit", None, '{"type":"input_audio_buffer.commit"}')
    state.observe_server("input_audio_buffer.committed", None, "")
    assert state.appended_audio_ms_upper_bound == 0.0


def test_only_a_session_update_sets_the_client_tools() -> None:
    state = SessionState()
    state.observe_client("session.update", {"type": "session.update", "session": {"tools": [TOOL]}}, "")
    looks_alike = {"type": "response.create", "session": {"tools": []}}
    state.observe_client("response.create", looks_alike, "")
    assert state.session_tools == [TOOL]


def test_a_binary_audio_delta_with_invalid_utf8_is_still_measured() -> None:
    state = SessionState()
    frame = b'{"type":"response.output_audio.delta","item_id":"item_1","delta":"QUJD\xff"}'
    state.observe_server("response.output_audio.delta", None, frame)
    assert state.assistant_audio_produced
    assert list(state.delivered_audio_ms) == ["item_1"]


def test_a_response_without_a_string_id_is_in_band_but_matches_no_item() -> None:
    state = SessionState()
    state.ledger.on_server(
        "response.created", {"type": "response.created", "response": {"id": 5, "conversation_id": "c"}}, 0.0
    )
    assert state.ledger.active_in_band is None  # the ledger binds string ids only
    item = {"id": "item_1", "role": "assistant", "type": "message"}
    state.observe_server(
        "response.output_item.done", {"type": "response.output_item.done", "response_id": 5, "item": item}, ""
    )
    assert "item_1" not in state.items_without_audio


# -- what the tool_choice rule may rely on (rules v2 state) -------------------------------------------


def server_session(**session: Any) -> dict[str, Any]:
    return {"type": "session.updated", "session": {"type": "realtime", **session}}


def test_tools_are_certain_only_as_the_server_last_listed_them() -> None:
    state = SessionState()
    assert (state.tools_source, state.tools_from_elsewhere, state.tools_certain) == (None, False, False)
    state.observe_server("session.updated", server_session(tools=[TOOL]), "")
    assert (state.tools_source, state.tools_from_elsewhere, state.tools_certain) == ("server", False, True)
    state.observe_client("session.update", {"type": "session.update", "session": {"tools": []}}, "")
    assert (state.tools_source, state.tools_certain) == ("client", False)


@pytest.mark.parametrize(
    ("session", "elsewhere"),
    [
        ({"tools": [TOOL, {"name": "g"}]}, False),  # a tool without a type is a function
        ({"tools": [TOOL], "prompt": {"id": "pmpt_1"}}, True),  # a prompt template may add tools
        ({"tools": [TOOL, {"type": "mcp", "server_label": "s"}]}, True),
        ({"tools": [], "prompt": None}, False),
    ],
)
def test_tools_from_elsewhere(session: dict[str, Any], elsewhere: bool) -> None:
    state = SessionState()
    state.observe_server("session.updated", server_session(**session), "")
    assert state.tools_from_elsewhere is elsewhere
    assert state.tools_certain is not elsewhere


@pytest.mark.parametrize(
    ("transcription", "expected"),
    [
        ({"model": "gpt-4o-transcribe"}, True),
        ({"model": ""}, False),
        ({}, False),
        (None, False),
        ("x", False),
    ],
)
def test_transcription_model_set(transcription: Any, expected: bool) -> None:
    state = SessionState()
    state.observe_server(
        "session.updated", server_session(audio={"input": {"transcription": transcription}}), ""
    )
    assert state.transcription_model_set is expected


def _in_band(state: SessionState, response_id: str = "resp_1") -> None:
    created = {"type": "response.created", "response": {"id": response_id, "conversation_id": "conv_1"}}
    state.ledger.on_server("response.created", created, 0.0)  # the pipeline does, before the stages


def _item_done(state: SessionState, item: Any, response_id: str = "resp_1") -> None:
    event = {"type": "response.output_item.done", "response_id": response_id, "item": item}
    state.observe_server("response.output_item.done", event, "")


@pytest.mark.parametrize(
    "item",
    [
        {"id": "item_1", "role": "user"},
        {"id": 5, "role": "assistant"},
        {"role": "assistant"},
        "item_1",
    ],
)
def test_only_assistant_items_with_an_id_are_noted(item: Any) -> None:
    state = SessionState()
    _in_band(state)
    _item_done(state, item)
    assert state.items_without_audio == {}


def test_items_without_audio_keep_the_newest_256() -> None:
    state = SessionState()
    _in_band(state)
    for index in range(257):
        _item_done(state, {"id": f"item_{index}", "role": "assistant"})
    assert len(state.items_without_audio) == 256
    assert next(iter(state.items_without_audio)) == "item_1"  # the oldest went first
    assert set(state.items_without_audio.values()) == {None}

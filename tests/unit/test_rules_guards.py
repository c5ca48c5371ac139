from __future__ import annotations

import copy
from typing import Any

import pytest

from realtime_proxy.core.rules import ChainResult, RuleChain, RuleRefusal, RuleRewrite, rule_by_name
from realtime_proxy.core.session_state import SessionState


def run(name: str, event: dict[str, Any], state: SessionState) -> ChainResult:
    snapshot = copy.deepcopy(event)
    result = RuleChain([rule_by_name(name)]).apply(event, state)
    assert event == snapshot
    assert result.failures == []
    return result


def spoken(voice: Any = "marin") -> SessionState:
    state = SessionState()
    state.voice = voice
    state.assistant_audio_produced = True
    return state


def test_voice_change_after_audio_dropped() -> None:
    event = {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "instructions": "x",
            "audio": {"output": {"voice": "alloy", "speed": 1.1}},
        },
    }
    result = run("voice_after_audio", event, spoken())
    assert result.event["session"] == {
        "type": "realtime",
        "instructions": "x",
        "audio": {"output": {"speed": 1.1}},
    }
    assert result.rewrites == [
        RuleRewrite("voice_after_audio", "session.audio.output.voice", "alloy", None, False)
    ]


def test_flat_voice_change_dropped() -> None:
    event = {"type": "session.update", "session": {"voice": {"id": "voice_1"}}}
    result = run("voice_after_audio", event, spoken())
    assert result.event["session"] == {}
    assert result.rewrites[0].path == "session.voice"


@pytest.mark.parametrize(
    "state",
    [SessionState(), spoken(None), spoken("alloy")],
    ids=["no-audio-yet", "voice-unknown", "same-voice"],
)
def test_voice_kept_when_allowed(state: SessionState) -> None:
    if not state.assistant_audio_produced:
        state.voice = "marin"
    event = {
        "type": "session.update",
        "session": {"type": "realtime", "audio": {"output": {"voice": "alloy"}}},
    }
    assert run("voice_after_audio", event, state).event is event


@pytest.mark.parametrize(
    "session", [None, 5, {"audio": 5}, {"audio": {"output": "x"}}, {"voice": None, "audio": []}]
)
def test_voice_wrong_types(session: Any) -> None:
    run("voice_after_audio", {"type": "session.update", "session": session}, spoken())


def test_empty_commit_refused_with_api_error() -> None:
    state = SessionState()
    state.appended_audio_ms_upper_bound = 42.5
    event = {"type": "input_audio_buffer.commit", "event_id": "e1"}
    result = run("empty_commit", event, state)
    assert result.event is event
    assert result.refusal == RuleRefusal(
        "empty_commit",
        "input_audio_buffer_commit_empty",
        "Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, "
        "but buffer only has 42.50ms of audio.",
        None,
    )


def test_commit_with_enough_audio_passes() -> None:
    state = SessionState()
    state.appended_audio_ms_upper_bound = 100.0
    event = {"type": "input_audio_buffer.commit"}
    result = run("empty_commit", event, state)
    assert result.event is event and result.refusal is None


def test_commit_not_judged_when_audio_arrives_as_media() -> None:
    state = SessionState()
    state.external_audio_input = True
    assert run("empty_commit", {"type": "input_audio_buffer.commit"}, state).refusal is None


def test_commit_after_observed_appends() -> None:
    state = SessionState()
    state.observe_server(
        "session.created", {"session": {"audio": {"input": {"format": {"type": "audio/pcm"}}}}}, ""
    )
    frame = '{"type":"input_audio_buffer.append","audio":"' + "A" * 6400 + '"}'  # 4800 bytes = 100ms
    state.observe_client("input_audio_buffer.append", None, frame)
    assert run("empty_commit", {"type": "input_audio_buffer.commit"}, state).refusal is None
    state.observe_client("input_audio_buffer.commit", None, '{"type":"input_audio_buffer.commit"}')
    # Sent, not yet confirmed: the commit may still be refused and leave the buffer as it was.
    assert run("empty_commit", {"type": "input_audio_buffer.commit"}, state).refusal is None
    state.observe_server("input_audio_buffer.committed", None, "")
    assert run("empty_commit", {"type": "input_audio_buffer.commit"}, state).refusal is not None


def test_truncate_clamped_to_delivered() -> None:
    state = SessionState()
    state.delivered_audio_ms["item_1"] = 1234.9
    event = {
        "type": "conversation.item.truncate",
        "item_id": "item_1",
        "content_index": 0,
        "audio_end_ms": 5000,
    }
    result = run("truncate_past_audio", event, state)
    assert result.event == {**event, "audio_end_ms": 1134}  # 100 ms margin: the server's item is shorter
    assert result.rewrites == [RuleRewrite("truncate_past_audio", "audio_end_ms", 5000, 1134, False)]
    near_end = run("truncate_past_audio", {**event, "audio_end_ms": 1200}, state)
    assert near_end.event["audio_end_ms"] == 1134
    state.delivered_audio_ms["item_1"] = 60.0
    assert run("truncate_past_audio", {**event, "audio_end_ms": 50}, state).event["audio_end_ms"] == 0


def test_truncate_of_an_item_that_delivered_no_audio_is_answered() -> None:
    state = SessionState()
    state.delivered_audio_ms["item_a"] = 500.0
    # An out-of-band response first (its items are not in the conversation), then an in-band one.
    for response_id, conversation, item_ids in (
        ("resp_o", None, ["item_o"]),
        ("resp_1", "c", ["item_t", "item_a"]),
    ):
        created = {
            "type": "response.created",
            "response": {"id": response_id, "conversation_id": conversation},
        }
        state.ledger.on_server("response.created", created, 0.0)  # the pipeline does, before the stages
        for item_id in item_ids:
            item = {"id": item_id, "role": "assistant", "content": []}
            done = {"type": "response.output_item.done", "response_id": response_id, "item": item}
            state.observe_server("response.output_item.done", done, "")
    assert list(state.items_without_audio) == ["item_t"]  # not the out-of-band item, not the audio item
    event = {"type": "conversation.item.truncate", "item_id": "item_t", "content_index": 0, "audio_end_ms": 0}
    result = run("truncate_past_audio", event, state)
    assert result.refusal == RuleRefusal(
        "truncate_past_audio",
        "unsupported_content_type",
        "Only model output audio messages can be truncated",
        "item_id",
    )
    audio_item = {**event, "item_id": "item_a"}
    assert run("truncate_past_audio", audio_item, state).event is audio_item


@pytest.mark.parametrize(
    ("item_id", "end"), [("item_1", 900), ("item_2", 5000), ("item_1", True), (5, 5000), ("item_1", "9")]
)
def test_truncate_left_alone(item_id: Any, end: Any) -> None:
    state = SessionState()
    state.delivered_audio_ms["item_1"] = 1000.0
    event = {
        "type": "conversation.item.truncate",
        "item_id": item_id,
        "content_index": 0,
        "audio_end_ms": end,
    }
    assert run("truncate_past_audio", event, state).event is event

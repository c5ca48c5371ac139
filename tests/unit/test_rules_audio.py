from __future__ import annotations

import copy
from typing import Any

import pytest

from realtime_proxy.core.rules import ChainResult, RuleChain, RuleRewrite, rule_by_name
from realtime_proxy.core.session_state import SessionState

PCM = {"type": "audio/pcm", "rate": 24000}


def run(name: str, event: dict[str, Any]) -> ChainResult:
    snapshot = copy.deepcopy(event)
    result = RuleChain([rule_by_name(name)]).apply(event, SessionState())
    assert event == snapshot
    assert result.failures == []
    return result


def test_flat_session_settings_moved() -> None:
    event = {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "voice": "alloy",
            "speed": 1.2,
            "input_audio_noise_reduction": {"type": "near_field"},
            "turn_detection": None,
        },
    }
    result = run("flat_audio_settings", event)
    assert result.event["session"] == {
        "type": "realtime",
        "audio": {
            "output": {"voice": "alloy", "speed": 1.2},
            "input": {"noise_reduction": {"type": "near_field"}, "turn_detection": None},
        },
    }
    assert result.rewrites[0] == RuleRewrite(
        "flat_audio_settings", "session.voice", "alloy", {"session.audio.output.voice": "alloy"}, True
    )
    assert len(result.rewrites) == 4


def test_flat_merges_and_nested_wins() -> None:
    event = {
        "type": "session.update",
        "session": {
            "voice": "alloy",
            "input_audio_format": "pcm16",
            "audio": {"output": {"voice": "marin"}, "input": {"turn_detection": None}},
        },
    }
    result = run("flat_audio_settings", event)
    assert result.event["session"] == {
        "audio": {"output": {"voice": "marin"}, "input": {"turn_detection": None, "format": "pcm16"}}
    }
    assert result.rewrites[0] == RuleRewrite("flat_audio_settings", "session.voice", "alloy", None, True)


def test_flat_response_settings() -> None:
    event = {
        "type": "response.create",
        "response": {"voice": "ash", "output_audio_format": "pcm16", "turn_detection": 1},
    }
    result = run("flat_audio_settings", event)
    assert result.event["response"] == {
        "turn_detection": 1,
        "audio": {"output": {"voice": "ash", "format": "pcm16"}},
    }


@pytest.mark.parametrize("audio", [5, "x", [], {"output": 5}])
def test_flat_wrong_audio_type_left_alone(audio: Any) -> None:
    event = {"type": "session.update", "session": {"voice": "alloy", "audio": audio}}
    assert run("flat_audio_settings", event).event is event


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("pcm16", PCM),
        ("g711_ulaw", {"type": "audio/pcmu"}),
        ("g711_alaw", {"type": "audio/pcma"}),
    ],
)
def test_format_strings(given: Any, expected: dict[str, Any]) -> None:
    # Separate copies: parsed JSON never aliases, and deepcopy would preserve the aliasing.
    audio = {"input": {"format": copy.deepcopy(given)}, "output": {"format": copy.deepcopy(given)}}
    event = {"type": "session.update", "session": {"audio": audio}}
    result = run("audio_format_strings", event)
    assert result.event["session"]["audio"] == {"input": {"format": expected}, "output": {"format": expected}}
    assert [r.path for r in result.rewrites] == [
        "session.audio.input.format",
        "session.audio.output.format",
    ] or all(r.path.endswith(".rate") for r in result.rewrites)
    assert len(result.rewrites) == 2


def test_format_on_response_output() -> None:
    event = {"type": "response.create", "response": {"audio": {"output": {"format": "g711_alaw"}}}}
    result = run("audio_format_strings", event)
    assert result.event["response"]["audio"]["output"]["format"] == {"type": "audio/pcma"}
    assert result.rewrites == [
        RuleRewrite(
            "audio_format_strings", "response.audio.output.format", "g711_alaw", {"type": "audio/pcma"}, True
        )
    ]


# `{"type": "audio/pcm"}` too: `rate` is optional in the SDK's types, no rate is added without evidence.
@pytest.mark.parametrize(
    "fmt", [PCM, {"type": "audio/pcm"}, {"type": "audio/pcmu"}, "opus", 5, None, {"type": 5}]
)
def test_format_ga_or_unknown_left_alone(fmt: Any) -> None:
    event = {"type": "session.update", "session": {"audio": {"input": {"format": fmt}}}}
    assert run("audio_format_strings", event).event is event


@pytest.mark.parametrize("audio", [None, 5, {"input": "x", "output": []}])
def test_format_wrong_types(audio: Any) -> None:
    run("audio_format_strings", {"type": "session.update", "session": {"audio": audio}})

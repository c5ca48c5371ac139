"""core/audio_accounting.py, the output side: per item, the most audio the proxy relayed, in the
format of the response it belongs to (its own, else the session's or any a create asked for)."""

from __future__ import annotations

from typing import Any

from realtime_proxy.core.audio_accounting import MAX_PENDING, MAX_TRACKED, InputBuffer, OutputAudio

PCM = {"type": "audio/pcm", "rate": 24000}  # 48 bytes/ms
PCMU = {"type": "audio/pcmu"}  # 8 bytes/ms


def created(rid: Any, fmt: Any = None) -> dict[str, Any]:
    response: dict[str, Any] = {"id": rid}
    if fmt is not None:
        response["audio"] = {"output": {"format": fmt}}
    return response


def test_a_response_counts_its_deltas_in_its_own_format() -> None:
    out = OutputAudio()
    out.session_bpm = 48.0
    out.response_created(created("r1", PCMU))
    out.delta("i1", "r1", 640)  # 480 bytes at 8 bytes/ms
    out.delta("i1", "r1", 64)
    assert out.delivered_ms == {"i1": 66.0}


def test_without_its_own_format_a_response_uses_the_sessions_or_a_smaller_one_a_create_asked_for() -> None:
    out = OutputAudio()
    out.session_bpm = 48.0
    out.response_created(created("r1"))  # no format echoed: the session's
    out.response_created(created("r2", {"type": "audio/unknown"}))  # unknown: the same fallback
    out.create_sent({"audio": {"output": {"format": PCMU}}})
    out.create_sent({"audio": {"output": {"format": PCM}}})  # the floor stays the smallest
    out.response_created(created("r3", None))
    out.delta("a", "r1", 64)
    out.delta("b", "r2", 64)
    out.delta("c", "r3", 64)
    assert out.delivered_ms == {"a": 1.0, "b": 1.0, "c": 6.0}


def test_an_unknown_create_format_counts_as_the_smallest_and_malformed_creates_are_ignored() -> None:
    out = OutputAudio()
    out.session_bpm = 48.0
    for response in (None, [], {"audio": []}, {"audio": {"output": []}}, {"audio": {"output": {}}}):
        out.create_sent(response)
    out.delta("a", None, 64)  # a response the proxy never saw created: the fallback
    assert out.delivered_ms == {"a": 1.0}
    out.create_sent({"audio": {"output": {"format": {"type": "audio/unknown"}}}})
    out.delta("b", None, 64)
    assert out.delivered_ms == {"a": 1.0, "b": 6.0}


def test_without_any_format_the_smallest_is_assumed_and_responses_without_an_id_are_not_kept() -> None:
    out = OutputAudio()
    out.response_created(created(7, PCM))
    out.response_created({"audio": {"output": {"format": PCM}}})
    out.delta("a", "7", 64)
    assert out.delivered_ms == {"a": 6.0}  # 8 bytes/ms: never fewer ms than could have played


def test_the_oldest_response_formats_are_forgotten_first() -> None:
    out = OutputAudio()
    out.session_bpm = 8.0
    for n in range(MAX_TRACKED + 1):
        out.response_created(created(f"r{n}", PCM))
    out.delta("old", "r0", 64)  # forgotten: the fallback
    out.delta("new", f"r{MAX_TRACKED}", 64)
    assert out.delivered_ms == {"old": 6.0, "new": 1.0}


def test_a_create_asking_for_a_larger_format_keeps_the_fallback_at_the_sessions() -> None:
    out = OutputAudio()
    out.session_bpm = 48.0
    out.create_sent({"audio": {"output": {"format": PCM}}})
    out.response_created(created("r1"))
    out.delta("a", "r1", 64)
    assert out.delivered_ms == {"a": 1.0}


def test_pending_updates_count_in_their_own_format_until_too_many_are_unanswered() -> None:
    """Each unanswered session.update's format is in play; past MAX_PENDING of them the smallest
    format any could have is assumed (the bound errs on the side of forwarding)."""
    buffer = InputBuffer()
    buffer.session_reported(PCM, True, answers_update=False)
    for _ in range(MAX_PENDING):
        buffer.update_sent(PCM, True)
    buffer.append(640)  # 480 bytes at 48 bytes/ms
    assert buffer.ms_upper_bound == 10.0
    buffer.update_sent(PCM, True)  # one more than is remembered
    assert buffer.ms_upper_bound == 60.0  # 480 bytes at 8 bytes/ms

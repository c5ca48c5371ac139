"""The benchmark's pure pieces: the upstream's reply shape and the load split (no processes)."""

from __future__ import annotations

from bench.load import CLEARED_HEAD, DELTA_HEAD, _parse_id, split
from bench.upstream import reply_to


def test_upstream_echoes_audio_and_timing() -> None:
    reply = reply_to('{"type":"input_audio_buffer.append","event_id":"b_7_123","audio":"QUJD"}')
    assert reply is not None and reply.startswith(DELTA_HEAD) and reply.endswith('"delta":"QUJD"}')
    assert _parse_id(reply, DELTA_HEAD) == (7, 123)
    cleared = reply_to('{"type":"input_audio_buffer.clear","event_id":"c_3_9"}')
    assert cleared is not None and _parse_id(cleared, CLEARED_HEAD) == (3, 9)
    assert reply_to('{"type":"response.create"}') is None


def test_split_covers_every_session() -> None:
    assert split(301, 2) == [(0, 151), (151, 150)]


def test_the_growth_conversation_passes_the_core_without_refusals() -> None:
    # bench.growth measures the core on this script: a refused or unparsed event would measure nothing.
    from bench.growth import TOOL_EVERY, Driver, build_core, session_update, turn
    from realtime_proxy.core.actions import Refusal, ResponseDone

    core = build_core()
    driver = Driver(core)
    driver.feed("c", session_update(3))
    seen: list[object] = []
    for t in (0, TOOL_EVERY - 1):  # a spoken answer, then a tool call and its output
        for side, frame in turn(t):
            actions = (core.from_client if side == "c" else core.from_upstream)(frame, driver.now)
            seen += actions or []
    assert not [a for a in seen if isinstance(a, Refusal)]
    assert [tool["name"] for tool in core.state.session_tools] == ["tool_0", "tool_1", "tool_2"]
    assert len([a for a in seen if isinstance(a, ResponseDone)]) == 2  # both responses were tracked

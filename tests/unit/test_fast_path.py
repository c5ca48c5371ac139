"""The pipeline's audio fast path (hot-prefix sniff, fast routes, the stages' `fast_*` hooks) is an
optimisation only: two cores fed the same frames, one with the fast path and one forced through the
full path (every frame sniffed by sniff_type / leading_type and carried as a Message through the
full hooks), return the same actions and end in the same state. Client frames are drawn from the
`openai` SDK's own event types (tests/sdk_events.py), written compactly or spaced, sometimes
tampered with (a second `type`, escapes); server frames are audio and other deltas in every layout,
with responses the retrier holds so that a fast hook answers and hands over to the full path."""

from __future__ import annotations

import base64
import json
import random
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from realtime_proxy.core import pipeline
from realtime_proxy.core.actions import FirstDelta, ToClient
from realtime_proxy.core.context import SessionContext
from realtime_proxy.core.events import sniff_string_field
from realtime_proxy.core.orchestration_observations import OrchestrationOptions
from realtime_proxy.core.retry import ResponseRetrier, RetryPolicy
from realtime_proxy.core.rules import build_chain
from realtime_proxy.core.session import CoreOptions, SessionCore
from realtime_proxy.core.session_state import b64_span_len, delta_fields
from realtime_proxy.core.stage import Forward
from realtime_proxy.core.traffic import TrafficCounts
from tests import sdk_events

FAST = settings(
    max_examples=60,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
AUDIO = base64.b64encode(random.Random(1).randbytes(480)).decode()


def _core(*, beta: bool = False, untouched: bool = False, full: bool = False) -> SessionCore:
    core = (_FullCore if full else SessionCore)(
        build_chain(),
        retrier=ResponseRetrier(RetryPolicy(), random.Random(0)),
        traffic=TrafficCounts(),
        context=SessionContext(route="realtime", model="gpt-realtime"),
        options=CoreOptions(beta_client=beta, orchestration=OrchestrationOptions(), untouched=untouched),
    )
    if full:  # no hot prefix ever matches
        for lane in core.lanes.values():
            lane.hot = ("\0never", "\0never")
    return core


class _FullCore(SessionCore):
    """A core forced through the full path: every route is the full one."""

    __slots__ = ()

    def _route(self, lane: Any, event_type: str | None) -> Any:
        return pipeline._route(lane, event_type)


def _state(core: SessionCore) -> Any:
    s = core.state
    return (
        s.input.total_bytes,
        s.input.floor_bpm,
        s.input.start_bytes,
        dict(s.output.delivered_ms or {}),
        s.assistant_audio_produced,
        core.traffic.frames,
        core.traffic.bytes,
    )


def _same(frames: list[tuple[str, str]], **options: bool) -> list[Any]:
    fast, full = _core(**options), _core(**options, full=True)
    outputs = []
    for side, frame in frames:
        got = [
            (c.from_client if side == "c" else c.from_upstream)(frame, 1.0 + len(outputs))
            for c in (fast, full)
        ]
        assert got[0] == got[1], (side, frame)
        outputs.append(got[0])
    assert _state(fast) == _state(full)
    return outputs


def _spaced(event: dict[str, Any]) -> str:
    return json.dumps(event)  # Python's default separators, as the SDK sends: `{"type": "x", ...}`


def _delta(layout: int, response_id: str = "resp_1", item_id: str = "item_1", kind: str = "") -> str:
    kind = kind or "response.output_audio.delta"
    body = {"response_id": response_id, "item_id": item_id, "output_index": 0, "content_index": 0}
    if layout == 0:  # the API's compact layout, type first
        return orjson.dumps({"type": kind, "event_id": "event_1", **body, "delta": AUDIO}).decode()
    if layout == 1:  # event_id first (the fake upstream's)
        return orjson.dumps({"event_id": "event_1", "type": kind, **body, "delta": AUDIO}).decode()
    if layout == 2:  # spaced
        return json.dumps({"type": kind, **body, "delta": AUDIO})
    if layout == 3:  # delta before the ids
        return orjson.dumps({"type": kind, "delta": AUDIO, **body}).decode()
    return orjson.dumps(
        {"type": kind, "event_id": "delta", **body, "delta": AUDIO}
    ).decode()  # a value `delta`


def _created(response_id: str, token: str | None, in_band: bool = False) -> str:
    response: dict[str, Any] = {"id": response_id, "object": "realtime.response", "status": "in_progress"}
    response["conversation_id"] = "conv_1" if in_band else None
    if token is not None:
        response["metadata"] = {"_proxy_attempt": token}
    return orjson.dumps({"type": "response.created", "event_id": "event_c", "response": response}).decode()


_CLIENT_EVENT = st.sampled_from(sdk_events.REALTIME_EVENTS).flatmap(sdk_events.typeddict_strategy)


@st.composite
def _client_frame(draw: st.DrawFn) -> str:
    event = draw(_CLIENT_EVENT)
    frame = draw(st.sampled_from([orjson.dumps(event).decode(), _spaced(event)]))
    tamper = draw(st.sampled_from(["", "", "type", "escape", "unicode"]))
    if tamper == "type":  # a second `type`: the API keeps the last one
        frame = frame[:-1] + ',"type":"response.create"}'
    elif tamper == "escape":
        frame = frame[:-1] + ',"note":"a\\"b"}'
    elif tamper == "unicode":
        frame = frame[:-1] + ',"\\u0074ype":"response.create"}'
    return frame


_APPEND = orjson.dumps({"type": "input_audio_buffer.append", "audio": AUDIO}).decode()
_SERVER = st.one_of(
    st.builds(
        _delta, st.integers(0, 4), st.sampled_from(["resp_1", "resp_2"]), st.sampled_from(["i1", "i2"])
    ),
    st.builds(
        _delta,
        st.integers(0, 3),
        kind=st.sampled_from(["response.output_audio_transcript.delta", "response.output_text.delta"]),
    ),
    st.sampled_from(
        [
            _created("resp_1", "rp1"),
            _created("resp_2", None, in_band=True),
            '{"type":"input_audio_buffer.committed","item_id":"u1"}',
            '{"type":"response.done","response":{"id":"resp_1","status":"completed","conversation_id":null}}',
            '{"type":"response.output_audio.delta","delta":"AAAA"}',  # no ids
            '{"type":"response.output_audio.delta" ,"response_id":"r","item_id":"i","delta":"x"}',
        ]
    ),
)


@FAST
@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("c"), _client_frame()),
            st.tuples(st.just("c"), st.just(_APPEND)),
            st.tuples(st.just("u"), _SERVER),
        ),
        max_size=25,
    ),
    beta=st.booleans(),
    untouched=st.booleans(),
)
def test_the_fast_path_gives_the_full_paths_actions_and_state(
    steps: list[tuple[str, str]], beta: bool, untouched: bool
) -> None:
    _same(steps, beta=beta, untouched=untouched)


def test_a_hook_that_answers_hands_the_frame_to_the_full_path() -> None:
    """A held out-of-band response is released by its first delta: the retrier's fast hook answers
    (a Forward of the held response.created), then the delta goes out after it; and the first delta
    of a response being timed is observed."""
    create = '{"type":"response.create","response":{"conversation":"none","output_modalities":["audio"]}}'
    outputs = _same(
        [("c", create), ("u", _created("resp_1", "rp1")), ("u", _delta(0)), ("u", _delta(0)), ("c", _APPEND)]
    )
    released = outputs[2]
    assert released is not None and isinstance(released[-1], ToClient) and released[-1].frame == _delta(0)
    assert any(isinstance(a, FirstDelta) for a in released)
    assert not any(isinstance(a, Forward) for a in released)  # resolved into what goes out
    assert outputs[3] is None and outputs[4] is None  # then the plain fast path: forwarded as received


@pytest.mark.parametrize(
    ("frame", "hot"),
    [
        (_APPEND, True),
        (_spaced({"type": "input_audio_buffer.append", "audio": AUDIO}), True),
        (_APPEND[:-1] + ',"type":"response.create"}', False),  # repeated type: sniff_type decides
        (_APPEND[:-1] + ',"x":"\\u0041"}', False),  # an escape: sniff_type decides
        ('{"event_id":"e","type":"input_audio_buffer.append","audio":"AAAA"}', False),  # not the prefix
    ],
)
def test_only_an_unambiguous_append_is_named_by_its_prefix(frame: str, hot: bool) -> None:
    core = _core()
    seen: list[str] = []
    original = pipeline.sniff_type

    def spy(text: str) -> str | None:
        seen.append(text)
        return original(text)

    pipeline.sniff_type = spy  # type: ignore[assignment]
    try:
        core.from_client(frame, 0.0)
    finally:
        pipeline.sniff_type = original  # type: ignore[assignment]
    assert (seen == []) is hot


_ID = st.sampled_from(["resp_1", "item_1", "delta", "item_id", "response_id", "", "a b", "x" * 300])


@FAST
@given(
    layout=st.integers(0, 4),
    response_id=_ID,
    item_id=_ID,
    payload=st.sampled_from([AUDIO, "", 'AA\\"BB', "type"]),
    cut=st.integers(0, 3),
)
def test_the_delta_layout_match_finds_what_the_sniffs_find(
    layout: int, response_id: str, item_id: str, payload: str, cut: int
) -> None:
    frame = _delta(layout, response_id, item_id).replace(AUDIO, payload)
    frame = frame[: len(frame) - cut]  # also truncated frames (no closing quote)
    item = sniff_string_field(frame, "item_id")
    expected = (
        (None, None, 0)
        if item is None
        else (item, sniff_string_field(frame, "response_id"), b64_span_len(frame))
    )
    assert delta_fields(frame) == expected

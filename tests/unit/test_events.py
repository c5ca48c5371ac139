"""The frame classifier reads a frame the way the API does (the last `type` wins), and measures depth."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime_proxy.core.events import (
    MAX_REPAIR_DEPTH,
    label_for,
    leading_type,
    nesting_depth,
    parse_object,
    sniff_string_field,
    sniff_type,
    too_deep,
)

AUDIO = base64.b64encode(bytes(range(256)) * 400).decode()  # 136 KiB: takes the quote-hopping path
SEED_CREATE = {"conversation": "none", "tool_choice": {"type": "function", "name": "f"}}


def test_orjson_keeps_the_last_of_duplicate_keys_as_the_api_does() -> None:
    frame = '{"type":"input_audio_buffer.append","audio":"AA","type":"response.create"}'
    assert orjson.loads(frame) == {"type": "response.create", "audio": "AA"}


@pytest.mark.parametrize(
    "frame",
    [
        '{"type":"input_audio_buffer.append","audio":"AA","type":"response.create"}',
        '{"type":"input_audio_buffer.append","audio":"' + AUDIO + '","type":"response.create"}',
        '{"type":"input_audio_buffer.append", "type" : "response.create"}',
        '{"event_id":"e1","type":"input_audio_buffer.append","type":"response.create"}',
        '{"type":"input_audio_buffer.append","\\u0074ype":"response.create"}',
        '{"type":"input_audio_buffer.append","t\\u0079pe":"response.create"}',
        b'{"type":"input_audio_buffer.append","audio":"AA","type":"response.create"}',
    ],
)
def test_a_second_type_key_leaves_the_frame_to_the_full_parse(frame: str | bytes) -> None:
    assert leading_type(frame) == "input_audio_buffer.append"
    assert sniff_type(frame) is None
    event = parse_object(frame)
    assert event is not None and event["type"] == "response.create"


def test_the_founding_bug_hidden_behind_an_append_type_is_seen_as_a_response_create() -> None:
    frame = (
        '{"type":"input_audio_buffer.append","audio":"' + AUDIO + '",'
        '"type":"response.create","response":' + orjson.dumps(SEED_CREATE).decode() + "}"
    )
    assert sniff_type(frame) is None
    event = parse_object(frame)
    assert event is not None
    assert (event["type"], event["response"]) == ("response.create", SEED_CREATE)


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ('{"type":"input_audio_buffer.append","audio":"' + AUDIO + '"}', "input_audio_buffer.append"),
        ('{"type":"input_audio_buffer.append","audio":"' + AUDIO[:3000] + '"}', "input_audio_buffer.append"),
        ('  {"type":"input_audio_buffer.append","audio":"' + AUDIO + '"}', "input_audio_buffer.append"),
        ('{"event_id":"e_1","type":"input_audio_buffer.append","audio":"AAAA"}', "input_audio_buffer.append"),
        (' { "type" : "response.cancel" , "response_id" : "r" }', "response.cancel"),
        ('{"type":"response.output_text.delta","delta":"say \\"hi\\"\\n"}', "response.output_text.delta"),
        (
            '{"type":"response.output_audio.delta","delta":"' + AUDIO + '","item_id":"i"}',
            "response.output_audio.delta",
        ),
        (b'{"type":"input_audio_buffer.append","audio":"AAAA"}', "input_audio_buffer.append"),
    ],
)
def test_an_unambiguous_leading_type_is_read_without_parsing(frame: str | bytes, expected: str) -> None:
    assert sniff_type(frame) == expected


@pytest.mark.parametrize(
    "frame",
    [
        '{"audio":"AA","type":"input_audio_buffer.append"}',  # type not leading
        '{"type":"conversation.item.create","item":{"type":"message"}}',  # a nested type: parse to be sure
        '{"type":"response.output_text.delta","delta":"x","type_hint":"\\u00e9"}',  # any \\u escape
        '{"type":"a\\"b"}',  # escaped leading type
        '{"type":""}',
        "[]",
        "",
        '{"type":"' + "x" * 200 + '"}',  # longer than any event type
    ],
)
def test_frames_the_sniff_cannot_vouch_for_are_left_to_the_parse(frame: str) -> None:
    assert sniff_type(frame) is None


def test_the_compact_form_with_an_escape_in_its_type_falls_back_to_the_regex() -> None:
    assert leading_type('{"type":"a\\u0062"}') is None
    assert leading_type('{"type":"response.create"}') == "response.create"


# -- property: whenever the sniff answers, it is what the full parse reads --------------------------

_KEYS = st.sampled_from(["type", "event_id", "audio", "response", "item", "\\u0074ype", "ty\\u0070e", "x"])
_SCALARS = st.one_of(
    st.sampled_from(['"response.create"', '"input_audio_buffer.append"', '"' + AUDIO[:64] + '"']),
    st.text(alphabet='ab"\\/{}[]:, type', max_size=12).map(lambda s: orjson.dumps(s).decode()),
    st.integers(-5, 5).map(str),
    st.just("null"),
)


def _objects(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    pair = st.tuples(_KEYS, children, st.sampled_from(["", " ", "\n"]))
    return st.lists(pair, max_size=5).map(
        lambda ps: "{" + ",".join(f'{w}"{k}"{w}:{w}{v}' for k, v, w in ps) + "}"
    )


_VALUES = st.recursive(
    _SCALARS,
    lambda children: (
        _objects(children) | st.lists(children, max_size=3).map(lambda xs: "[" + ",".join(xs) + "]")
    ),
    max_leaves=12,
)
_LEADS = st.sampled_from(
    [
        '{"type":"input_audio_buffer.append"',
        '{ "type" : "response.create"',
        '{"event_id":"e","type":"session.update"',
    ]
)


@settings(max_examples=400, deadline=None)
@given(
    lead=_LEADS, rest=st.lists(st.tuples(_KEYS, _VALUES), max_size=4), close=st.sampled_from(["}", "", "]}"])
)
def test_the_sniff_agrees_with_the_full_parse(lead: str, rest: list[tuple[str, str]], close: str) -> None:
    frame = lead + "".join(f',"{k}":{v}' for k, v in rest) + close
    sniffed, event = sniff_type(frame), parse_object(frame)
    if sniffed is not None and event is not None:
        assert event.get("type") == sniffed
    if event is not None and isinstance(event.get("type"), str) and sniffed is None:
        # Refusing to vouch is allowed only where a second type key or an escape could be at work.
        assert frame.count('"type"') > 1 or "\\u" in frame


# -- nesting depth ------------------------------------------------------------------------------------


def _depth_of(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth_of, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth_of, value), default=0)
    return 0


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(alphabet='[]{}"\\ab\n', max_size=6),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text('[]{}"\\k', max_size=3), children, max_size=3)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(_JSON)
def test_nesting_depth_ignores_brackets_inside_strings(value: Any) -> None:
    frame = orjson.dumps(value)
    assert nesting_depth(frame) == nesting_depth(frame.decode()) == _depth_of(value)


@pytest.mark.parametrize("depth", [1, 100, MAX_REPAIR_DEPTH, MAX_REPAIR_DEPTH + 1, 254, 300, 600, 5000])
def test_too_deep_flags_every_depth_past_the_limit(depth: int) -> None:
    frame = '{"type":"session.update","session":{"x":' + "[" * (depth - 2) + "]" * (depth - 2) + "}}"
    assert nesting_depth(frame) == max(depth, 2)
    assert too_deep(frame) is (max(depth, 2) > MAX_REPAIR_DEPTH)


def test_many_shallow_brackets_are_not_too_deep() -> None:
    tools = [{"type": "function", "name": f"t{i}", "parameters": {"type": "object"}} for i in range(500)]
    frame = orjson.dumps({"type": "session.update", "session": {"tools": tools}}).decode()
    assert not too_deep(frame)
    assert nesting_depth(frame) == 5


def test_brackets_in_strings_do_not_count_towards_depth() -> None:
    frame = orjson.dumps({"type": "session.update", "session": {"instructions": "[{" * 400 + '\\"'}}).decode()
    assert nesting_depth(frame) == 2
    assert not too_deep(frame)


# -- edges mutation testing found ------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        '{"type":"","event_id":"e"}',  # empty type, a later quote in reach of the fast path
        '{"type":"' + "x" * 131 + '"}',  # the closing quote just past the fast path's window
        '{"type":"\\xyz"}',  # a type starting with a backslash
    ],
)
def test_the_compact_fast_path_refuses_what_the_regex_refuses(frame: str) -> None:
    assert leading_type(frame) is None
    assert sniff_type(frame) is None


def test_binary_frames_are_sniffed_too() -> None:
    assert leading_type(b"not json") is None
    assert sniff_type(b'{"type":"x","a":"\xff\xfe"}') == "x"  # invalid UTF-8 after the type
    assert sniff_type(b'{"type":"x","a":"\xff","type":"y"}') is None


def test_label_for_bounds_metric_labels() -> None:
    known = frozenset({"response.create"})
    assert [label_for(t, known) for t in ("response.create", "made.up", None)] == [
        "response.create",
        "other",
        "invalid",
    ]


def test_sniff_string_field_compiles_a_new_name_and_searches_past_the_head() -> None:
    name = f"field_{uuid.uuid4().hex}"  # never cached, whatever ran before
    late = '{"type":"x","pad":"' + "p" * 400 + f'","{name}" : "v1"}}'
    assert sniff_string_field(late, name) == "v1"
    assert sniff_string_field(f'{{"{name}":"v2"}}', name) == "v2"
    assert sniff_string_field('{"other":"v"}', name) is None


def test_too_deep_counts_depth_not_brackets() -> None:
    exact = "[" * MAX_REPAIR_DEPTH + "]" * MAX_REPAIR_DEPTH
    frame = '[{"a":[]},' + exact + "]"  # depth 129 with 131 openers
    assert nesting_depth(frame) == MAX_REPAIR_DEPTH + 1 and too_deep(frame)
    level = "[[],[],[]," + "[" * (MAX_REPAIR_DEPTH - 1) + "]" * (MAX_REPAIR_DEPTH - 1) + "]"
    assert nesting_depth(level) == MAX_REPAIR_DEPTH and not too_deep(level)  # at the limit, many openers
    assert too_deep(frame.encode()) and not too_deep(level.encode())


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
def test_any_bytes_like_frame_is_classified_without_error(wrap: Any) -> None:
    frame = wrap(b'{"type":"x","a":[[1]]}')
    assert (leading_type(frame), sniff_type(frame), nesting_depth(frame), too_deep(frame, 1)) == (
        "x",
        "x",
        3,
        True,
    )
    assert sniff_type(wrap(bytes(range(256)))) is None


@pytest.mark.parametrize("wrap", [bytes, bytearray])
def test_a_binary_frame_passes_the_core_untouched_whatever_its_bytes_type(wrap: Any) -> None:
    from realtime_proxy.core.rules import build_chain
    from realtime_proxy.core.session import SessionCore

    core = SessionCore(build_chain())
    frame = wrap(b'{"type":"response.create","response":{"tool_choice":{"type":"function","name":"f"}}}')
    assert core.from_client(frame, 0.0) is None
    assert core.from_upstream(wrap(b'{"type":"response.done","response":{}}'), 0.0) is None
    assert core.traffic.by_direction["client_to_upstream"].frames["binary"] == 1

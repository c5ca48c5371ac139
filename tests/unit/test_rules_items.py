from __future__ import annotations

import copy
from typing import Any

import pytest

from realtime_proxy.core.rules import ChainResult, RuleChain, RuleRewrite, build_chain, rule_by_name
from realtime_proxy.core.session_state import SessionState


def run(name: str, event: dict[str, Any]) -> ChainResult:
    snapshot = copy.deepcopy(event)
    result = RuleChain([rule_by_name(name)]).apply(event, SessionState())
    assert event == snapshot
    assert result.failures == []
    return result


def message(role: str, *types: str) -> dict[str, Any]:
    return {"type": "message", "role": role, "content": [{"type": t, "text": "hi"} for t in types]}


@pytest.mark.parametrize(
    ("role", "given", "expected"),
    [
        ("user", ["text", "audio", "input_image"], ["input_text", "input_audio", "input_image"]),
        ("system", ["text"], ["input_text"]),
        ("assistant", ["text", "input_text"], ["output_text", "output_text"]),
    ],
)
def test_content_part_types_by_role(role: str, given: list[str], expected: list[str]) -> None:
    result = run("content_part_types", {"type": "conversation.item.create", "item": message(role, *given)})
    assert result.event["item"] == message(role, *expected)
    changed = [(g, e) for g, e in zip(given, expected, strict=True) if g != e]
    assert [(r.before, r.after) for r in result.rewrites] == changed
    assert result.rewrites[0].path == "item.content[0].type"


def test_content_part_types_in_response_input() -> None:
    event = {
        "type": "response.create",
        "response": {"input": [message("user", "input_text"), message("assistant", "text")]},
    }
    result = run("content_part_types", event)
    assert result.event["response"]["input"][1] == message("assistant", "output_text")
    assert result.rewrites == [
        RuleRewrite("content_part_types", "response.input[1].content[0].type", "text", "output_text", True)
    ]


@pytest.mark.parametrize(
    "item",
    [
        message("user", "input_text", "input_audio"),
        message("assistant", "output_text"),
        {"type": "function_call", "role": "assistant", "content": [{"type": "text"}]},
        {"type": "message", "role": "tool", "content": [{"type": "text"}]},
        {"type": "message", "role": "user", "content": "text"},
        {"type": "message", "role": 5, "content": [5, None, {"type": 3}]},
        {"type": "message", "role": "user", "content": [5, None, {"type": 3}]},
        {"type": "item_reference", "id": "item_1"},
        5,
        None,
    ],
)
def test_content_part_types_leaves_alone(item: Any) -> None:
    event = {"type": "conversation.item.create", "item": item}
    assert run("content_part_types", event).event is event


def test_function_call_output_encoded() -> None:
    event = {
        "type": "conversation.item.create",
        "item": {"type": "function_call_output", "call_id": "call_1", "output": {"ok": True, "n": [1, 2]}},
    }
    result = run("function_call_output_string", event)
    assert result.event["item"]["output"] == '{"ok":true,"n":[1,2]}'
    assert result.rewrites == [
        RuleRewrite(
            "function_call_output_string",
            "item.output",
            {"ok": True, "n": [1, 2]},
            '{"ok":true,"n":[1,2]}',
            True,
        )
    ]


@pytest.mark.parametrize(("output", "encoded"), [(None, "null"), (3, "3"), ([], "[]"), (2**70, str(2**70))])
def test_function_call_output_scalars(output: Any, encoded: str) -> None:
    event = {"type": "conversation.item.create", "item": {"type": "function_call_output", "output": output}}
    assert run("function_call_output_string", event).event["item"]["output"] == encoded


def test_function_call_output_big_value_is_summarised_in_record() -> None:
    big = {"rows": ["x" * 50] * 20}
    event = {"type": "conversation.item.create", "item": {"type": "function_call_output", "output": big}}
    rewrite = run("function_call_output_string", event).rewrites[0]
    assert rewrite.before == "<dict 1 keys>" and rewrite.after.startswith("<str ")


@pytest.mark.parametrize(
    "item",
    [
        {"type": "function_call_output", "call_id": "c", "output": "{}"},
        {"type": "function_call_output", "call_id": "c"},
        {"type": "function_call", "output": {}},
        [],
    ],
)
def test_function_call_output_leaves_alone(item: Any) -> None:
    event = {"type": "conversation.item.create", "item": item}
    assert run("function_call_output_string", event).event is event


def test_ga_item_untouched_by_full_chain() -> None:
    event = {
        "type": "conversation.item.create",
        "previous_item_id": None,
        "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello"}]},
    }
    assert build_chain().apply(event, SessionState()).event is event


def test_assistant_output_audio_becomes_output_text_with_its_transcript() -> None:
    item = {
        "type": "message",
        "role": "assistant",
        "content": [
            {"type": "output_audio", "transcript": "said before"},
            {"type": "output_text", "text": "kept"},
            {"type": "audio", "transcript": "beta spelling"},
        ],
    }
    result = run("content_part_types", {"type": "conversation.item.create", "item": item})
    assert result.event["item"]["content"] == [
        {"type": "output_text", "text": "said before"},
        {"type": "output_text", "text": "kept"},
        {"type": "output_text", "text": "beta spelling"},
    ]
    assert [(r.path, r.before, r.after, r.lossless) for r in result.rewrites] == [
        ("item.content[2].type", "audio", "output_audio", True),
        ("item.content[0]", "output_audio", "output_text", True),
        ("item.content[2]", "output_audio", "output_text", True),
    ]


def test_assistant_output_audio_without_transcript_is_dropped_lossy() -> None:
    item = {"type": "message", "role": "assistant", "content": [{"type": "output_audio", "audio": "AAAA"}]}
    event = {"type": "response.create", "response": {"conversation": "none", "input": [item]}}
    result = run("content_part_types", event)
    assert result.event["response"]["input"][0]["content"] == [{"type": "output_text", "text": ""}]
    assert result.rewrites == [
        RuleRewrite("content_part_types", "response.input[0].content[0]", "output_audio", None, False)
    ]
    user = {"type": "message", "role": "user", "content": [{"type": "input_audio", "audio": "AAAA"}]}
    untouched = {"type": "conversation.item.create", "item": user}
    assert run("content_part_types", untouched).event is untouched

"""Conversation item repairs (catalogue items 8, 10)."""

from __future__ import annotations

import json
from typing import Any

import orjson

from realtime_proxy.core.rules._util import brief, items
from realtime_proxy.core.rules.model import REALTIME, Rule, RuleRewrite
from realtime_proxy.core.session_state import SessionState

_ITEM_TYPES = frozenset({"conversation.item.create", "response.create"})

# role -> {beta/wrong part type -> GA part type}
_PART_TYPES: dict[str, dict[str, str]] = {
    "user": {"text": "input_text", "audio": "input_audio"},
    "system": {"text": "input_text"},
    "assistant": {"text": "output_text", "input_text": "output_text", "audio": "output_audio"},
}


def _assistant_audio(path: str, content: list[Any], out: list[RuleRewrite]) -> None:
    """Assistant output_audio parts -> output_text carrying the transcript; dropped without one.

    The types allow output_audio in assistant history, the API refuses it ("Missing required
    parameter: 'item.content[0].text'."). Indices in the records are those of the input."""
    kept: list[Any] = []
    for i, part in enumerate(content):
        if not (isinstance(part, dict) and part.get("type") == "output_audio"):
            kept.append(part)
            continue
        transcript = part.get("transcript")
        where = f"{path}.content[{i}]"
        if isinstance(transcript, str) and transcript:
            kept.append({"type": "output_text", "text": transcript})
            # Lossless unless audio bytes were sent along: the API cannot take them in history.
            out.append(
                RuleRewrite("content_part_types", where, "output_audio", "output_text", "audio" not in part)
            )
        else:
            out.append(RuleRewrite("content_part_types", where, "output_audio", None, False))
    if kept != content:
        content[:] = kept or [{"type": "output_text", "text": ""}]  # the item keeps its place


def _content_parts(event: dict[str, Any], state: SessionState, out: list[RuleRewrite]) -> None:
    for path, item in items(event):
        role, content = item.get("role"), item.get("content")
        mapping = _PART_TYPES.get(role) if isinstance(role, str) else None
        if mapping is None or item.get("type", "message") != "message" or not isinstance(content, list):
            continue
        for i, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if isinstance(kind, str) and kind in mapping:
                part["type"] = mapping[kind]
                out.append(
                    RuleRewrite("content_part_types", f"{path}.content[{i}].type", kind, mapping[kind], True)
                )
        if role == "assistant":
            _assistant_audio(path, content, out)


CONTENT_PART_TYPES = Rule(
    name="content_part_types",
    description="Content part types by role (text -> input_text/output_text); assistant output_audio -> "
    "output_text with its transcript (dropped, lossy, without one).",
    lossless=True,
    default_enabled=True,
    event_types=_ITEM_TYPES,
    prevents="Invalid value: 'text'. Value must be 'output_text'. / Missing required parameter: "
    "'item.content[0].text'. (assistant output_audio)",
    apply=_content_parts,
    session_types=REALTIME,
    evidence="openai/types/realtime/realtime_conversation_item_*_message_param.py; "
    "https://github.com/openai/openai-agents-js/issues/963",
)


def _encode(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except (TypeError, orjson.JSONEncodeError):  # e.g. integers beyond 64 bits
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _function_output(event: dict[str, Any], state: SessionState, out: list[RuleRewrite]) -> None:
    for path, item in items(event):
        if (
            item.get("type") == "function_call_output"
            and "output" in item
            and not isinstance(item["output"], str)
        ):
            before = brief(item["output"])
            item["output"] = _encode(item["output"])
            out.append(
                RuleRewrite(
                    "function_call_output_string", f"{path}.output", before, brief(item["output"]), True
                )
            )


FUNCTION_CALL_OUTPUT_STRING = Rule(
    name="function_call_output_string",
    description="Non-string function_call_output.output -> its compact JSON encoding.",
    lossless=True,
    default_enabled=True,
    event_types=_ITEM_TYPES,
    prevents="Invalid type for 'item.output': expected a string.",
    apply=_function_output,
    session_types=REALTIME,
    evidence="openai/types/realtime/realtime_conversation_item_function_call_output_param.py (output: str)",
)

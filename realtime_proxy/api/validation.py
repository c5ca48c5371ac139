"""GA-strict validation of client payloads; every check raises `ApiError` with the API's text.

Only the GA shape is accepted: beta names are unknown parameters, exactly like the real API.
"""

from __future__ import annotations

from typing import Any

from realtime_proxy.api.errors import (
    ApiError,
    invalid_type,
    invalid_value,
    missing_parameter,
    unknown_parameter,
)

SESSION_KEYS = frozenset(
    {
        "type",
        "audio",
        "include",
        "instructions",
        "max_output_tokens",
        "model",
        "output_modalities",
        "parallel_tool_calls",
        "prompt",
        "reasoning",
        "tool_choice",
        "tools",
        "tracing",
        "truncation",
    }
)
RESPONSE_KEYS = frozenset(
    {
        "audio",
        "conversation",
        "input",
        "instructions",
        "max_output_tokens",
        "metadata",
        "output_modalities",
        "parallel_tool_calls",
        "prompt",
        "reasoning",
        "tool_choice",
        "tools",
    }
)
AUDIO_INPUT_KEYS = frozenset({"format", "noise_reduction", "transcription", "turn_detection"})
AUDIO_OUTPUT_KEYS = frozenset({"format", "speed", "voice"})
AUDIO_FORMATS = ("audio/pcm", "audio/pcmu", "audio/pcma")
TOOL_CHOICE_MODES = ("none", "auto", "required")
CONTENT_TYPES_BY_ROLE: dict[str, tuple[str, ...]] = {
    "user": ("input_text", "input_audio", "input_image"),
    "system": ("input_text",),
    "assistant": ("output_text", "output_audio"),
}
ITEM_TYPES = (
    "message",
    "function_call",
    "function_call_output",
    "mcp_approval_response",
    "mcp_list_tools",
    "mcp_call",
    "mcp_approval_request",
)
# Required fields of the MCP items, per the SDK's types (openai/types/realtime/realtime_mcp_*_param.py).
MCP_REQUIRED: dict[str, tuple[str, ...]] = {
    "mcp_approval_response": ("id", "approval_request_id", "approve"),
    "mcp_list_tools": ("server_label", "tools"),
    "mcp_call": ("id", "arguments", "name", "server_label"),
    "mcp_approval_request": ("id", "arguments", "name", "server_label"),
}


def _require_object(value: object, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid_type(param, "an object", value)
    return value


def _check_keys(obj: dict[str, Any], allowed: frozenset[str], prefix: str) -> None:
    for key in obj:
        if key not in allowed:
            raise unknown_parameter(f"{prefix}.{key}")


def check_modalities(value: object, param: str) -> None:
    if not isinstance(value, list):
        raise invalid_type(param, "an array", value)
    if value not in (["text"], ["audio"]):
        shown = "[" + ", ".join(repr(v) for v in value) + "]"
        raise ApiError(
            f"Invalid modalities: {shown}. Supported combinations are: ['text'] and ['audio'].",
            code="invalid_value",
            param=param,
        )


def check_max_output_tokens(value: object, param: str) -> None:
    if value == "inf":
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise invalid_type(param, "an integer or 'inf'", value)
    if value < 1:
        raise ApiError(
            f"Invalid '{param}': integer below minimum value. "
            f"Expected a value >= 1, but got {value} instead.",
            code="integer_below_min_value",
            param=param,
        )
    if value > 4096:
        raise ApiError(
            f"Invalid '{param}': integer above maximum value. "
            f"Expected a value <= 4096, but got {value} instead.",
            code="integer_above_max_value",
            param=param,
        )


def check_format(value: object, param: str) -> dict[str, Any]:
    fmt = _require_object(value, param)
    kind = fmt.get("type")
    if kind not in AUDIO_FORMATS:
        raise invalid_value(f"{param}.type", kind, AUDIO_FORMATS)
    if kind == "audio/pcm":
        if fmt.get("rate", 24000) != 24000:
            raise invalid_value(f"{param}.rate", fmt.get("rate"), [24000])
        return {"type": kind, "rate": 24000}
    return {"type": kind}


def check_tools(value: object, param: str) -> None:
    if not isinstance(value, list):
        raise invalid_type(param, "an array", value)
    for i, tool in enumerate(value):
        where = f"{param}[{i}]"
        _require_object(tool, where)
        kind = tool.get("type", "function")
        if kind == "mcp":
            if "server_label" not in tool:
                raise missing_parameter(f"{where}.server_label")
            continue
        if kind != "function":
            raise invalid_value(f"{where}.type", kind, ["function", "mcp"])
        # Chat Completions shape ({type, function: {...}}) fails on the missing flat name first.
        if "name" not in tool:
            raise missing_parameter(f"{where}.name")
        _check_keys(tool, frozenset({"type", "name", "description", "parameters"}), where)


def check_tool_choice(value: object, param: str) -> None:
    if isinstance(value, str):
        if value not in TOOL_CHOICE_MODES:
            raise invalid_value(param, value, TOOL_CHOICE_MODES)
        return
    if not isinstance(value, dict):
        raise invalid_type(param, "one of a string or an object", value)
    if value.get("type") == "function":
        if not isinstance(value.get("name"), str):
            raise missing_parameter(f"{param}.name")
    elif value.get("type") == "mcp":
        if not isinstance(value.get("server_label"), str):
            raise missing_parameter(f"{param}.server_label")
    else:
        raise invalid_value(f"{param}.type", value.get("type"), ["function", "mcp"])


def check_metadata(value: object, param: str) -> None:
    if value is None:
        return
    meta = _require_object(value, param)
    if len(meta) > 16:
        raise ApiError(
            f"Invalid '{param}': too many properties. Expected an object with at most 16 "
            f"properties, but got an object with {len(meta)} properties instead.",
            code="object_above_max_properties",
            param=param,
        )
    for key, val in meta.items():
        if len(key) > 64:
            raise ApiError(
                f"Invalid '{param}': string too long. Expected a string with maximum length 64, "
                f"but got a string with length {len(key)} instead.",
                code="string_above_max_length",
                param=param,
            )
        if not isinstance(val, str):
            raise invalid_type(f"{param}.{key}", "a string", val)
        if len(val) > 512:
            raise ApiError(
                f"Invalid '{param}.{key}': string too long. Expected a string with maximum length "
                f"512, but got a string with length {len(val)} instead.",
                code="string_above_max_length",
                param=f"{param}.{key}",
            )


def check_item(value: object, param: str) -> dict[str, Any]:
    """Validate a conversation item (conversation.item.create / response.input)."""
    item = _require_object(value, param)
    kind = item.get("type")
    if kind is None:
        raise missing_parameter(f"{param}.type")
    if param.startswith("response.input") and kind == "item_reference":
        if not isinstance(item.get("id"), str):
            raise missing_parameter(f"{param}.id")
        return item
    if kind not in ITEM_TYPES:
        raise invalid_value(f"{param}.type", kind, ITEM_TYPES)
    if kind == "message":
        role = item.get("role")
        if role is None:
            raise missing_parameter(f"{param}.role")
        if role not in CONTENT_TYPES_BY_ROLE:
            raise invalid_value(f"{param}.role", role, CONTENT_TYPES_BY_ROLE)
        content = item.get("content")
        if not isinstance(content, list):
            raise (missing_parameter if content is None else _array_type)(f"{param}.content")
        allowed = CONTENT_TYPES_BY_ROLE[role]
        for i, part in enumerate(content):
            where = f"{param}.content[{i}]"
            _require_object(part, where)
            if role == "assistant" and part.get("type") == "output_audio":
                # Allowed by the types, refused by the API (openai-agents-js #963).
                raise missing_parameter(f"{where}.text")
            if "type" not in part:
                continue  # optional in the SDK's types; no report shows the API refusing it
            if part.get("type") not in allowed:
                # The API names the text variant for assistant/system ("Value must be 'output_text'.").
                shown = allowed if role == "user" else allowed[:1]
                raise invalid_value(f"{where}.type", part.get("type"), shown)
    elif kind in MCP_REQUIRED:
        for field in MCP_REQUIRED[kind]:
            if field not in item:
                raise missing_parameter(f"{param}.{field}")
    elif kind == "function_call":
        for field in ("name", "arguments"):
            if not isinstance(item.get(field), str):
                raise (missing_parameter if field not in item else _string_type)(f"{param}.{field}")
    else:
        if not isinstance(item.get("call_id"), str):
            raise missing_parameter(f"{param}.call_id")
        if "output" not in item:
            raise missing_parameter(f"{param}.output")
        if not isinstance(item["output"], str):
            raise invalid_type(f"{param}.output", "a string", item["output"])
    return item


def _array_type(param: str) -> ApiError:
    return ApiError(f"Invalid type for '{param}': expected an array.", code="invalid_type", param=param)


def _string_type(param: str) -> ApiError:
    return ApiError(f"Invalid type for '{param}': expected a string.", code="invalid_type", param=param)


def check_audio_block(audio: object, prefix: str, *, response: bool) -> None:
    block = _require_object(audio, prefix)
    _check_keys(block, frozenset({"output"}) if response else frozenset({"input", "output"}), prefix)
    for side, keys in (("input", AUDIO_INPUT_KEYS), ("output", AUDIO_OUTPUT_KEYS)):
        if side not in block:
            continue
        where = f"{prefix}.{side}"
        sub = _require_object(block[side], where)
        _check_keys(sub, frozenset({"format", "voice"}) if response else keys, where)
        if "format" in sub:
            sub["format"] = check_format(sub["format"], f"{where}.format")
        if "voice" in sub and not isinstance(sub["voice"], str | dict):
            raise invalid_type(f"{where}.voice", "a string", sub["voice"])
        speed = sub.get("speed")
        if "speed" in sub and speed is None:  # livekit/agents #2577
            raise invalid_type(f"{where}.speed", "a decimal", None)
        if speed is not None and (not isinstance(speed, int | float) or not 0.25 <= speed <= 1.5):
            raise ApiError(
                f"Invalid '{where}.speed': expected a number between 0.25 and 1.5.",
                code="invalid_value",
                param=f"{where}.speed",
            )
        td = sub.get("turn_detection")
        if td is not None:
            _require_object(td, f"{where}.turn_detection")
            if td.get("type") not in ("server_vad", "semantic_vad"):
                raise invalid_value(
                    f"{where}.turn_detection.type", td.get("type"), ["server_vad", "semantic_vad"]
                )


def check_session_update(session: object, current_type: str) -> dict[str, Any]:
    """Validate `session.update`'s `session`; returns it (formats normalised) or raises."""
    if session is None:
        raise missing_parameter("session")
    sess = _require_object(session, "session")
    if "type" not in sess:
        raise missing_parameter("session.type")
    if sess["type"] not in ("realtime", "transcription"):
        raise invalid_value("session.type", sess["type"], ["realtime", "transcription"])
    if sess["type"] == "transcription" and current_type == "realtime":
        raise ApiError(
            "Passing a transcription session update event to a realtime session is not allowed.",
            code="invalid_parameter",
            param="session.type",
        )
    if sess["type"] != current_type:
        raise ApiError(
            f"Cannot update a session's type from '{current_type}' to '{sess['type']}'.",
            code="invalid_value",
            param="session.type",
        )
    _check_keys(sess, SESSION_KEYS, "session")
    _check_common(sess, "session")
    if "audio" in sess:
        check_audio_block(sess["audio"], "session.audio", response=False)
    return sess


def check_response_create(response: object) -> dict[str, Any]:
    if response is None:
        return {}
    resp = _require_object(response, "response")
    _check_keys(resp, RESPONSE_KEYS, "response")
    _check_common(resp, "response")
    if "audio" in resp:
        check_audio_block(resp["audio"], "response.audio", response=True)
    conv = resp.get("conversation", "auto")
    if conv not in ("auto", "none"):
        raise invalid_value("response.conversation", conv, ["auto", "none"])
    check_metadata(resp.get("metadata"), "response.metadata")
    if "input" in resp:
        if not isinstance(resp["input"], list):
            raise invalid_type("response.input", "an array", resp["input"])
        for i, item in enumerate(resp["input"]):
            check_item(item, f"response.input[{i}]")
    return resp


def _check_common(obj: dict[str, Any], prefix: str) -> None:
    if "output_modalities" in obj:
        check_modalities(obj["output_modalities"], f"{prefix}.output_modalities")
    if "max_output_tokens" in obj:
        check_max_output_tokens(obj["max_output_tokens"], f"{prefix}.max_output_tokens")
    if "tools" in obj:
        check_tools(obj["tools"], f"{prefix}.tools")
    if "tool_choice" in obj:
        check_tool_choice(obj["tool_choice"], f"{prefix}.tool_choice")
    if "instructions" in obj and not isinstance(obj["instructions"], str):
        raise invalid_type(f"{prefix}.instructions", "a string", obj["instructions"])

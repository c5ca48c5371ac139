"""Function tool fields and Chat-Completions-shaped tool_choice objects (field reports, 2025-26)."""

from __future__ import annotations

from typing import Any

from realtime_proxy.core.rules._util import brief, targets
from realtime_proxy.core.rules.model import REALTIME, Rule, RuleRewrite
from realtime_proxy.core.session_state import SessionState

_CONFIG_TYPES = frozenset({"session.update", "response.create"})
# RealtimeFunctionToolParam: everything else (strict, meta, id, ...) is an unknown parameter.
_FUNCTION_TOOL_KEYS = frozenset({"type", "name", "description", "parameters"})


def _function_tool_fields(event: dict[str, Any], state: SessionState, out: list[RuleRewrite]) -> None:
    for prefix, obj in targets(event):
        tools = obj.get("tools")
        if not isinstance(tools, list):
            continue
        for i, tool in enumerate(tools):
            # Only flat function tools: MCP tools have their own fields, and a Chat Completions
            # tool still nested under `function` is chat_completions_tools' (or the API's) business.
            if not isinstance(tool, dict) or tool.get("type", "function") != "function" or "name" not in tool:
                continue
            for key in [k for k in tool if k not in _FUNCTION_TOOL_KEYS]:
                out.append(
                    RuleRewrite(
                        "function_tool_fields",
                        f"{prefix}.tools[{i}].{key}",
                        brief(tool.pop(key)),
                        None,
                        False,
                    )
                )


FUNCTION_TOOL_FIELDS = Rule(
    name="function_tool_fields",
    description="Strip function tool fields the API refuses (strict, meta, ...); keep type, name, "
    "description, parameters.",
    lossless=False,  # `strict` asked for strict schema adherence, which the Realtime API does not offer
    default_enabled=True,
    event_types=_CONFIG_TYPES,
    prevents="Unknown parameter: 'session.tools[0].strict'. / 'session.tools[0].meta'.",
    apply=_function_tool_fields,
    session_types=REALTIME,
    evidence="openai/types/realtime/realtime_function_tool_param.py; "
    "https://github.com/livekit/agents/issues/3210; https://github.com/livekit/agents/issues/3398",
)


def _chat_completions_tool_choice(event: dict[str, Any], state: SessionState, out: list[RuleRewrite]) -> None:
    for prefix, obj in targets(event):
        choice = obj.get("tool_choice")
        if not isinstance(choice, dict) or choice.get("type") != "function" or "name" in choice:
            continue
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str):
            continue
        obj["tool_choice"] = {"type": "function", "name": name}
        out.append(
            RuleRewrite(
                "chat_completions_tool_choice",
                f"{prefix}.tool_choice",
                brief(choice),
                obj["tool_choice"],
                True,
            )
        )


CHAT_COMPLETIONS_TOOL_CHOICE = Rule(
    name="chat_completions_tool_choice",
    description='tool_choice {"type":"function","function":{"name":X}} -> {"type":"function","name":X}.',
    lossless=True,
    default_enabled=True,
    event_types=_CONFIG_TYPES,
    prevents="Missing required parameter: 'session.tool_choice.name'.",
    apply=_chat_completions_tool_choice,
    session_types=REALTIME,
    evidence="openai/types/realtime/realtime_tool_choice_config_param.py (function choice: flat name)",
)

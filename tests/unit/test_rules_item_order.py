"""Items after one the rules leave alone (an item_reference, a function call) are still repaired:
mutation testing found `continue` -> `break` in the item loop unnoticed."""

from __future__ import annotations

import copy
from typing import Any

from realtime_proxy.core.rules import RuleChain, RuleRewrite, rule_by_name
from realtime_proxy.core.session_state import SessionState


def test_parts_after_an_item_reference_in_response_input_are_repaired() -> None:
    event: dict[str, Any] = {
        "type": "response.create",
        "response": {
            "conversation": "none",
            "input": [
                {"type": "item_reference", "id": "item_1"},
                {"type": "function_call_output", "call_id": "c", "output": {"ok": True}},
                {"type": "message", "role": "user", "content": [{"type": "text", "text": "hi"}]},
            ],
        },
    }
    chain = RuleChain([rule_by_name("content_part_types"), rule_by_name("function_call_output_string")])
    result = chain.apply(copy.deepcopy(event), SessionState())
    assert result.event["response"]["input"] == [
        {"type": "item_reference", "id": "item_1"},
        {"type": "function_call_output", "call_id": "c", "output": '{"ok":true}'},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
    ]
    assert sorted(result.rewrites, key=lambda r: r.path) == [
        RuleRewrite(
            "function_call_output_string",
            "response.input[1].output",
            {"ok": True},
            '{"ok":true}',
            True,
        ),
        RuleRewrite("content_part_types", "response.input[2].content[0].type", "text", "input_text", True),
    ]

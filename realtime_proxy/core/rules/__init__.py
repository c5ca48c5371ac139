"""Repair rules for client events: each rule fixes one known way the Realtime API rejects a request."""

from __future__ import annotations

from realtime_proxy.core.rules.engine import (
    ALL_RULES,
    ChainResult,
    Refuse,
    Rule,
    RuleChain,
    RuleRefusal,
    RuleRewrite,
    build_chain,
    rule_by_name,
)

__all__ = [
    "ALL_RULES",
    "ChainResult",
    "Refuse",
    "Rule",
    "RuleChain",
    "RuleRefusal",
    "RuleRewrite",
    "build_chain",
    "rule_by_name",
]

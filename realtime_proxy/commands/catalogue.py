"""`realtime-proxy rules`: the rule catalogue with each rule's scope and evidence.

`--format markdown` prints docs/rules.md's rule table from the same metadata."""

from __future__ import annotations

import argparse
import json
from typing import Any

from realtime_proxy.core.context import ALL_ROUTES, ROUTES
from realtime_proxy.core.rules import ALL_RULES, Rule


def _scope(values: frozenset[str], every: tuple[str, ...]) -> str:
    return "all" if set(every) <= values else ", ".join(v for v in every if v in values)


def _routes(values: frozenset[str]) -> str:
    """ "all" for every Realtime route; Live's rules name `live`."""
    return "all" if set(ROUTES) <= values else ", ".join(r for r in ALL_ROUTES if r in values)


def describe(rule: Rule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "default": "on" if rule.default_enabled else "off",
        "lossless": rule.lossless,
        "event_types": sorted(rule.event_types),
        "description": rule.description,
        "prevents": rule.prevents,
        "routes": [r for r in ALL_ROUTES if r in rule.routes],  # live: the Live API's own rules
        "session_types": sorted(rule.session_types),
        "models": list(rule.models) or "all",
        "model_scope": model_scope(rule),
        "evidence": rule.evidence,
    }


def model_scope(rule: Rule) -> str:
    """The model scope the engine enforces, in words."""
    if not rule.models:
        return "all models"
    families = ", ".join(rule.models)
    return (
        f"enforced: the {families} family only (dated snapshots included; not other models, not an "
        "unknown model); [models.rules.<model>] can switch it on elsewhere"
    )


def _text(rule: Rule) -> str:
    d = describe(rule)
    lossless = "lossless" if rule.lossless else "lossy"
    return "\n".join(
        [
            f"{rule.name}  [{d['default']}, {lossless}]  on {', '.join(d['event_types'])}",
            f"  {rule.description}",
            f"  prevents: {rule.prevents}",
            f"  routes: {', '.join(d['routes'])}; session types: {', '.join(d['session_types'])}; "
            f"models: {d['model_scope']}",
            f"  evidence: {rule.evidence}",
        ]
    )


def _markdown() -> str:
    rows = [
        "| rule | fixes / prevents | routes · session types · models | lossless | default | evidence |",
        "|---|---|---|---|---|---|",
    ]
    for rule in ALL_RULES:
        scope = (
            f"{_routes(rule.routes)} · {', '.join(sorted(rule.session_types))} · "
            f"{(', '.join(rule.models) + ' family (enforced)') if rule.models else 'all'}"
        )
        evidence = "<br>".join(part.strip() for part in rule.evidence.split(";"))
        cells = [
            f"`{rule.name}`",
            f"{rule.description} — *{rule.prevents}*".replace("|", "\\|"),
            scope,
            "yes" if rule.lossless else "no",
            "on" if rule.default_enabled else "off",
            evidence.replace("|", "\\|"),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="realtime-proxy rules", description="Print the repair rules with their scope and evidence."
    )
    parser.add_argument("--format", choices=["text", "json", "markdown"], default="text")
    args = parser.parse_args(argv)
    if args.format == "json":
        print(json.dumps([describe(rule) for rule in ALL_RULES], indent=2))
    elif args.format == "markdown":
        print(_markdown())
    else:
        print("\n\n".join(_text(rule) for rule in ALL_RULES))
    return 0

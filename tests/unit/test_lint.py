"""`realtime-proxy lint`: crafted files covering every rule (the seed event included), both input
formats, exit codes 0/1/2, JSON output, and a live proxy's --record-dir capture linted offline."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from realtime_proxy.commands.lint import lint_events, read_events
from realtime_proxy.core.rules import ALL_RULES, build_chain

DATA = Path(__file__).parents[1] / "data"


def run_lint(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "realtime_proxy", "lint", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_every_rule_is_found_in_the_crafted_file() -> None:
    report = lint_events(read_events(DATA / "every_rule.jsonl"), build_chain())
    fired = {f.rule for f in report.findings if f.kind in ("rewrite", "refusal")}
    # Every rule on by default that applies on the plain realtime route (lint's default context).
    expected = {r.name for r in ALL_RULES if r.default_enabled and "realtime" in r.routes}
    handshake_only = {"live_model_on_realtime"}  # applied to the handshake (edge.admit), not to events
    assert fired == expected - {
        "transcription_handshake_model",
        "transcription_session_update",
        *handshake_only,
    }
    refusals = {(f.rule, f.event_id) for f in report.findings if f.kind == "refusal"}
    assert refusals == {("empty_commit", "e8"), ("tool_choice_object", "e9")}
    unfixable = [f for f in report.findings if f.kind == "unfixable"]
    assert [(f.event_id, f.path) for f in unfixable] == [("e10", "session.bogus_field")]
    seed = [f for f in report.findings if f.index == 4]
    assert [(f.rule, f.path, f.after) for f in seed] == [
        ("tool_choice_object", "response.tool_choice", "required")
    ]
    assert "server_error" in (seed[0].prevents or "")


def test_cli_text_output_and_exit_code_for_findings() -> None:
    result = run_lint(str(DATA / "every_rule.jsonl"))
    assert result.returncode == 1
    assert "#4 response.create: tool_choice_object would rewrite response.tool_choice" in result.stdout
    assert "12 client events, 22 rewrites, 2 refusals, 1 unfixable" in result.stdout


def test_cli_clean_json_array_exits_zero() -> None:
    result = run_lint(str(DATA / "clean.json"))
    assert result.returncode == 0, result.stdout
    assert result.stdout.strip().endswith("2 client events, clean")


def test_cli_json_format() -> None:
    result = run_lint("--format", "json", str(DATA / "every_rule.jsonl"))
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["events"] == 12
    assert {f["kind"] for f in document["findings"]} == {"rewrite", "refusal", "unfixable"}


@pytest.mark.parametrize("content", ["{not json", "[1, 2", ""])
def test_cli_unreadable_input_exits_two(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    result = run_lint(str(path)) if content else run_lint(str(tmp_path / "missing.jsonl"))
    assert result.returncode == 2
    assert "realtime-proxy lint:" in result.stderr


def test_config_switches_rules_off(tmp_path: Path) -> None:
    config = tmp_path / "proxy.toml"
    config.write_text("[rules.tool_choice_object]\nenabled = false\n")
    document = json.loads(
        run_lint("--format", "json", "--config", str(config), str(DATA / "every_rule.jsonl")).stdout
    )
    assert "tool_choice_object" not in {f["rule"] for f in document["findings"]}


@pytest.mark.parametrize("field", ["voice", "input_audio_format", "output_audio_format", "turn_detection"])
def test_flat_audio_finding_names_the_field_it_moved(field: str) -> None:
    value: object = {"type": "server_vad"} if field == "turn_detection" else "pcm16"
    if field == "voice":
        value = "alloy"
    event = {"type": "session.update", "session": {"type": "realtime", field: value}}
    report = lint_events([event], build_chain())
    (flat,) = [f for f in report.findings if f.rule == "flat_audio_settings"]
    assert (flat.index, flat.path) == (1, f"session.{field}")
    assert flat.prevents == f"Unknown parameter: 'session.{field}'."

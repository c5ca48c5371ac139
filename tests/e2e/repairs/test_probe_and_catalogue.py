"""`realtime-proxy rules` and `realtime-proxy probe` as real subprocesses; the probe runs against
the fake (no key or network here), which refuses every probed failure like the API."""

from __future__ import annotations

import asyncio
import json
import os
import sys

from realtime_proxy.commands.probe_cases import NOT_PROBED, PROBES
from realtime_proxy.core.rules import ALL_RULES
from realtime_proxy.fake_upstream import FakeUpstream


async def run_cli(*args: str, key: str | None) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    if key is not None:
        env["OPENAI_API_KEY"] = key
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "realtime_proxy",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()


def test_every_rule_has_a_probe_or_a_reason() -> None:
    probed = [p.rule for p in PROBES]
    assert len(probed) == len(set(probed))
    assert sorted([*probed, *NOT_PROBED]) == sorted(r.name for r in ALL_RULES)


async def test_rules_catalogue_prints_scope_and_evidence() -> None:
    code, out, _ = await run_cli("rules", key=None)
    assert code == 0
    for rule in ALL_RULES:
        assert f"{rule.name}  [" in out
    assert "routes: realtime, transcription, sideband, azure; session types: realtime;" in out
    assert "evidence: https://github.com/livekit/agents-js/issues/1756" in out
    code, out, _ = await run_cli("rules", "--format", "json", key=None)
    catalogue = json.loads(out)
    assert [entry["name"] for entry in catalogue] == [r.name for r in ALL_RULES]
    assert all(entry["evidence"] and entry["prevents"] and entry["routes"] for entry in catalogue)
    assert all("translation" not in entry["routes"] for entry in catalogue)
    code, out, _ = await run_cli("rules", "--format", "markdown", key=None)
    assert out.count("\n| `") == len(ALL_RULES)


async def test_probe_needs_a_key() -> None:
    code, out, err = await run_cli("probe", key=None)
    assert code == 2 and "OPENAI_API_KEY" in err and out == ""


async def test_probe_against_the_fake_reports_every_failure_and_every_repair() -> None:
    key = "sk-probe-SECRET-0123456789"
    async with FakeUpstream(delta_interval=0.001, api_key=key) as fake:
        code, out, err = await run_cli(
            "probe", "--upstream-url", fake.url, "--model", "gpt-realtime", "--format", "json",
            "--quiet", "0.2", key=key,
        )  # fmt: skip
        assert code == 0, err
        results = json.loads(out)
        assert key not in out + err
        probed = [r for r in results if r["failing"] is not None]
        assert [r["rule"] for r in probed] == [p.rule for p in PROBES]
        assert all(r["still_needed"] and r["repaired"]["accepted"] for r in probed), probed
        skipped = {r["rule"]: r["note"] for r in results if r["failing"] is None}
        assert set(skipped) == set(NOT_PROBED)
        # Throwaway sessions straight to the API: two per probe, nothing else.
        assert len(fake.connections) == 2 * len(PROBES)
    code, text, _ = await run_cli("probe", "--fake-upstream", "--rule", "drop_temperature", key=None)
    assert code == 0
    assert text.splitlines() == [
        "model gpt-realtime",
        "  drop_temperature                 NEEDED      fails: unknown_parameter: Unknown parameter: "
        "'session.temperature'.; repaired: ok",
        "  -> 1 of 1 probed failures still reproduce; 0 repaired events refused",
        "model gpt-realtime-2",
        "  drop_temperature                 NEEDED      fails: unknown_parameter: Unknown parameter: "
        "'session.temperature'.; repaired: ok",
        "  -> 1 of 1 probed failures still reproduce; 0 repaired events refused",
    ]

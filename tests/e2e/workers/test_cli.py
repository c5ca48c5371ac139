"""The real CLI as a subprocess: `realtime-proxy` and `python -m realtime_proxy` start with --fake-upstream on
ports 0/0 and serve /healthz, /readyz, /metrics; the Dockerfile's ENTRYPOINT+CMD is the command tested
here (with the image's config path) and its HEALTHCHECK hits /healthz on the configured metrics port;
bad config exits 2 naming the key; precedence flag > env > file on a running process."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import subprocess
import time
import tomllib
from pathlib import Path

import pytest

from tests.e2e.helpers import REPO, http_get, proxy_command, proxy_process

LOOPBACK = ("--host", "127.0.0.1", "--port", "0", "--metrics-port", "0")


@pytest.mark.parametrize("module", [False, True], ids=["realtime-proxy", "python-m-proxy"])
async def test_starts_and_serves_health(module: bool) -> None:
    async with proxy_process("--fake-upstream", *LOOPBACK, module=module) as running:
        assert (await http_get(running.metrics_port, "/healthz"))[0] == 200
        assert (await http_get(running.metrics_port, "/readyz"))[0] == 200
        status, body = await http_get(running.metrics_port, "/metrics")
        assert status == 200 and b"realtime_proxy_sessions_active" in body
        assert (await http_get(running.metrics_port, "/nope"))[0] == 404
        assert await running.stop() == 0


def _dockerfile() -> dict[str, str]:
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    final_stage = text.rsplit("\nFROM ", 1)[1]
    instructions: dict[str, str] = {}
    for line in final_stage.splitlines():
        if line.strip() and not line.startswith("#"):
            word, _, rest = line.strip().partition(" ")
            instructions.setdefault(word.upper(), "")
            instructions[word.upper()] += (" ; " if instructions[word.upper()] else "") + rest.strip()
    return instructions


async def test_dockerfile_command_is_the_tested_command() -> None:
    docker = _dockerfile()
    command = json.loads(docker["ENTRYPOINT"]) + json.loads(docker["CMD"])
    assert "config/proxy.toml /etc/realtime-proxy/proxy.toml" in docker["COPY"]
    # The image's command, with the repository path of the same config file.
    local = [c.replace("/etc/realtime-proxy/proxy.toml", "config/proxy.toml") for c in command]
    assert local == ["realtime-proxy", "--config", "config/proxy.toml"]
    healthcheck = re.search(r"https?://[^'\"]+", docker["HEALTHCHECK"])
    assert healthcheck is not None
    config = tomllib.loads((REPO / "config" / "proxy.toml").read_text())
    assert healthcheck.group(0) == f"http://127.0.0.1:{config['metrics_port']}/healthz"
    assert str(config["metrics_port"]) in docker["EXPOSE"].split()
    async with proxy_process(*local[1:], "--fake-upstream", *LOOPBACK) as running:
        assert (await http_get(running.metrics_port, "/healthz"))[0] == 200
        assert await running.stop() == 0


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        proxy_command(*args), capture_output=True, text=True, timeout=30, cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), **(env or {})},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("max_sesions = 3\n", "max_sesions"),
        ("[retry]\nmax_attemps = 3\n", "retry.max_attemps"),
        ("[rules.no_such_rule]\nenabled = true\n", "rules"),
        ('port = "eighty"\n', "port"),
        ("[retry]\nmax_attempts = 0\n", "retry.max_attempts"),
        ('upstream_url = "https://api.openai.com"\n', "upstream_url"),
    ],
)
def test_bad_config_exits_2_naming_the_key(tmp_path: Path, toml: str, key: str) -> None:
    config = tmp_path / "proxy.toml"
    config.write_text(toml)
    result = _run("--config", str(config))
    assert result.returncode == 2
    assert re.search(rf"(^|\s){re.escape(key)}:", result.stderr), result.stderr


def test_bad_env_value_exits_2_naming_the_key() -> None:
    result = _run(env={"REALTIME_PROXY_MAX_SESSIONS": "lots"})
    assert result.returncode == 2 and "max_sessions:" in result.stderr


async def test_precedence_flag_over_env_over_file(tmp_path: Path) -> None:
    config = tmp_path / "proxy.toml"
    config.write_text('upstream_url = "ws://127.0.0.1:1001"\nmax_sessions = 7\n')
    env = {"REALTIME_PROXY_UPSTREAM_URL": "ws://127.0.0.1:1002"}
    for extra, expected in (
        ((), "127.0.0.1:1002"),
        (("--upstream-url", "ws://127.0.0.1:1003"), "127.0.0.1:1003"),
    ):
        async with proxy_process("--config", str(config), *LOOPBACK, *extra, env=env) as running:
            listening = next(json.loads(x) for x in running.lines if '"proxy_listening"' in x)
            assert listening["upstream"] == expected, shlex.join(extra)
            assert await running.stop() == 0


async def test_deprecated_queue_setting_is_named_at_start_and_dry_run_observes_turns(tmp_path: Path) -> None:
    config = tmp_path / "proxy.toml"
    config.write_text("[rules]\nqueue_in_band_responses = true\n")
    args = ("--config", str(config), "--fake-upstream", "--dry-run", "--log-format", "json", *LOOPBACK)
    async with proxy_process(*args) as running:
        assert await running.stop() == 0
    events = {e["event"]: e for e in (json.loads(line) for line in running.lines if line.startswith("{"))}
    assert "rules.queue_in_band_responses is deprecated" in events["config_deprecated"]["message"]
    assert events["config_deprecated"]["level"] == "warning"
    assert events["proxy_listening"]["orchestration_mode"] == "observe"


async def test_fake_upstream_latency_and_an_early_cancel_through_the_real_process() -> None:
    from openai import AsyncOpenAI

    args = ("--fake-upstream", "--fake-upstream-latency", "0.3", "--log-format", "json", *LOOPBACK)
    async with proxy_process(*args) as running:
        client = AsyncOpenAI(api_key="sk-test", websocket_base_url=f"ws://127.0.0.1:{running.port}/v1")
        async with asyncio.timeout(10), client.realtime.connect(model="gpt-realtime") as connection:
            assert (await connection.recv()).type == "session.created"
            started = time.monotonic()
            await connection.response.create(response={"output_modalities": ["text"]})
            await connection.response.cancel()
            seen = []
            async for event in connection:
                seen.append(event.type)
                if event.type == "response.created":
                    waited = time.monotonic() - started
                if event.type == "response.done":
                    assert event.response.status == "cancelled"
                    break
        assert "error" not in seen and waited >= 0.3
        assert await running.stop() == 0
    events = [json.loads(line) for line in running.lines if line.startswith("{")]
    assert [e["event"] for e in events if e["event"].startswith("cancel_")] == [
        "cancel_held",
        "cancel_released",
    ]
    # The client's own cancel is a request honoured: info, not warning.
    (done,) = [e for e in events if e["event"] == "response_not_completed"]
    assert (done["level"], done["status"], done["reason"]) == ("info", "cancelled", "client_cancelled")
    # Durations in milliseconds, without float noise.
    durations = [v for e in events for k, v in e.items() if isinstance(v, float) and "seconds" in k]
    assert durations and all(v == round(v, 3) for v in durations), durations


async def test_fake_upstream_failures_through_the_real_process() -> None:
    """Issue 25 through the CLI: the fake drops each upstream after its first response and fails
    the first in-band one; the SDK session keeps its socket and gets two good responses."""
    from openai import AsyncOpenAI

    failures = ("--fake-upstream-drop-after", "1", "--fake-upstream-fail-in-band", "1")
    args = ("--fake-upstream", *failures, "--log-format", "json", *LOOPBACK)
    async with proxy_process(*args) as running:
        client = AsyncOpenAI(api_key="sk-test", websocket_base_url=f"ws://127.0.0.1:{running.port}/v1")
        statuses = []
        async with asyncio.timeout(15), client.realtime.connect(model="gpt-realtime") as connection:
            assert (await connection.recv()).type == "session.created"
            for _ in range(2):
                await connection.response.create(response={"output_modalities": ["text"]})
                async for event in connection:
                    if event.type == "response.done":
                        statuses.append(event.response.status)
                        break
        assert statuses == ["completed", "completed"]
        assert await running.stop() == 0
    events = [json.loads(line) for line in running.lines if line.startswith("{")]
    names = [e["event"] for e in events]
    assert "response_redriven" in names and "upstream_resumed" in names
    assert all(e["level"] != "error" for e in events)

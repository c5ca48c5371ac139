"""The command line's rough edges, on real processes: a reader that went away (`| head -1`) ends
every subcommand without a traceback, and the proxy itself goes on serving without its log reader;
`probe` that reached nothing exits 1 and claims nothing; `lint` shows a null field's removal as a
removal."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from realtime_proxy.commands.probe_cases import PROBES
from tests.e2e.helpers import AUTH, proxy_command

SUBCOMMANDS = [
    ["rules"],
    ["rules", "--format", "json"],
    ["rules", "--format", "markdown"],
    ["lint", str(Path(__file__).parents[2] / "data" / "every_rule.jsonl")],
    ["probe", "--fake-upstream", "--rule", "drop_temperature"],
    ["--help"],
    ["--version"],
]


def run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    env.update(kwargs.pop("env", {}))  # type: ignore[call-overload]
    return subprocess.run(proxy_command(*args), text=True, env=env, timeout=60, check=False, **kwargs)  # type: ignore[call-overload, no-any-return]


@pytest.mark.parametrize("args", SUBCOMMANDS, ids=" ".join)
def test_a_closed_stdout_ends_quietly(args: list[str]) -> None:
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first write: every write fails with EPIPE
    try:
        result = run(args, stdout=write, stderr=subprocess.PIPE)
    finally:
        os.close(write)
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr, result.stderr
    assert result.returncode in (0, 141)  # 141: cut short, as a process killed by SIGPIPE reports


def test_piped_into_head_in_a_shell() -> None:
    command = " ".join(proxy_command("rules")) + " | head -1"
    result = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0 and result.stderr == ""
    assert len(result.stdout.splitlines()) == 1


def test_probe_that_reaches_nothing_fails_and_claims_nothing() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    url = f"ws://127.0.0.1:{port}"
    args = ["probe", "--upstream-url", url, "--model", "gpt-realtime"]
    env = {"OPENAI_API_KEY": "sk-probe-SECRET"}
    result = run([*args, "--format", "json"], env=env, capture_output=True)
    assert result.returncode == 1
    assert "could not open a session" in result.stderr
    results = json.loads(result.stdout)
    assert results and all(r["still_needed"] is None for r in results)
    unreached = [r for r in results if r["unreached"]]
    assert len(unreached) == len(PROBES)
    assert all(r["note"].startswith("could not open a session: refused (") for r in unreached)
    text = run(args, env=env, capture_output=True)
    assert text.returncode == 1
    assert " of " not in text.stdout and "NEEDED" not in text.stdout and "not needed" not in text.stdout
    assert "-> nothing probed: no session could be opened for" in text.stdout
    assert "sk-probe-SECRET" not in text.stdout + text.stderr + result.stdout + result.stderr


def test_lint_shows_a_null_speed_removal(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    update = {"type": "session.update", "session": {"type": "realtime", "audio": {"output": {"speed": None}}}}
    events.write_text(json.dumps(update) + "\n")
    result = run(["lint", str(events)], capture_output=True)
    assert result.returncode == 1
    assert "null_speed would rewrite session.audio.output.speed: null -> (deleted)" in result.stdout


async def test_the_proxy_outlives_its_log_reader() -> None:
    """`realtime-proxy | head -1`: once the log pipe is gone, lines are dropped, sessions still work and
    SIGTERM still ends it with 0 (the first log write used to raise in the session's code)."""
    read, write = os.pipe()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REALTIME_PROXY_")}
    env |= {"REALTIME_PROXY_WORKERS": "1", "PYTHONPATH": str(Path(__file__).parents[3])}
    args = (
        "--fake-upstream",
        "--log-format",
        "json",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--metrics-port",
        "0",
    )
    proc = await asyncio.create_subprocess_exec(
        *proxy_command(*args), stdout=write, stderr=asyncio.subprocess.PIPE, env=env
    )
    os.close(write)
    try:
        with os.fdopen(read) as reader:
            listening = json.loads(await asyncio.wait_for(asyncio.to_thread(reader.readline), 15))
        # The reader is gone: every later line hits a closed pipe.
        url = f"ws://127.0.0.1:{listening['port']}/v1/realtime?model=gpt-realtime"
        for _ in range(2):
            async with asyncio.timeout(10), connect(url, additional_headers=AUTH) as client:
                assert json.loads(await client.recv())["type"] == "session.created"
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            _, err = await proc.communicate()
    assert proc.returncode == 0
    assert "Traceback" not in err.decode()

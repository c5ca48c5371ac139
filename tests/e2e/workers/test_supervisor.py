"""The supervisor of several workers through real processes, like nginx's master: readiness without
parsing logs (any --log-format), a failed start stops everything it started, a port served by
another instance is refused, worker lines follow the log format, merged /metrics pass promtool's
rules, a closed stdout never breaks sessions, SIGHUP restarts the workers gracefully, a killed worker
is respawned (counted), workers die with the supervisor, and max_sessions spans the workers.

One supervisor (module fixture, stdout closed as by `| head -1`) serves the tests that only need a
running proxy; the start-up tests run their own."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pty
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from tests.e2e.helpers import AUTH, closed_with, eventually, http_get, proxy_process
from tests.e2e.supervisor_helpers import (
    Supervised,
    connection_owner,
    finish,
    json_lines,
    listening,
    metric,
    read_until,
    start,
    tagged_pids,
    until,
)
from tests.exposition_lint import exposition_problems

LOOPBACK = ("--host", "127.0.0.1", "--port", "0", "--metrics-port", "0")
TWO = {"REALTIME_PROXY_WORKERS": "2", "REALTIME_PROXY_SHUTDOWN_GRACE": "0.5"}


async def session(port: int) -> ClientConnection:
    client = await connect(f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime", additional_headers=AUTH)
    assert json.loads(await client.recv())["type"] == "session.created"
    return client


async def scrape(run: Supervised) -> str:
    status, body = await http_get(run.metrics_port, "/metrics")
    assert status == 200
    return body.decode()


@pytest.fixture(scope="module")
def shared() -> Iterator[Supervised]:
    """Two workers, max_sessions = 3 for the whole proxy; stdout's reader gone after the first line."""
    env = {**TWO, "REALTIME_PROXY_MAX_SESSIONS": "3"}
    run = listening(start("--fake-upstream", "--log-format", "json", *LOOPBACK, env=env))
    assert run.proc.stdout is not None
    run.proc.stdout.close()  # `realtime-proxy | head -1`: every later log write fails with EPIPE
    try:
        yield run
    finally:
        run.kill_all()


async def test_sessions_go_on_when_stdout_is_closed_and_dropped_lines_are_counted(shared: Supervised) -> None:
    async with asyncio.timeout(20):
        for _ in range(4):
            client = await session(shared.port)
            await client.close()
        await until(lambda: _dropped(shared), timeout=10)
    assert len(shared.workers()) == 2 and shared.proc.poll() is None


async def _dropped(run: Supervised) -> bool:
    return metric(await scrape(run), "realtime_proxy_log_lines_dropped_total") > 0


async def test_merged_metrics_pass_the_exposition_rules(shared: Supervised) -> None:
    text = await scrape(shared)
    assert exposition_problems(text) == []
    assert "# TYPE realtime_proxy_rewrites_total counter" in text
    assert metric(text, "realtime_proxy_workers") == 2
    if shutil.which("promtool") is None:
        pytest.skip("promtool not installed (Debian: apt-get install prometheus); the Python rules passed")
    command = ["promtool", "check", "metrics"]
    checked = await asyncio.to_thread(
        subprocess.run, command, input=text.encode(), capture_output=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


async def test_a_port_served_by_another_instance_is_refused(shared: Supervised) -> None:
    for workers in ("2", "1"):
        args = (
            "--host",
            "127.0.0.1",
            "--port",
            str(shared.port),
            "--metrics-port",
            "0",
            "--log-format",
            "json",
        )
        other = start("--fake-upstream", *args, env={**TWO, "REALTIME_PROXY_WORKERS": workers})
        out = finish(other)
        assert other.proc.returncode == 1, workers
        failed = next(e for e in json_lines(out) if e["event"] == "startup_failed")
        assert "in use" in str(failed["error"]), failed
        assert other.tagged() == []
    client = await session(shared.port)  # the first instance still serves
    await client.close()


async def test_max_sessions_spans_the_workers_and_a_dead_workers_slots_come_back(shared: Supervised) -> None:
    admitted: list[ClientConnection] = []
    refused = 0
    async with asyncio.timeout(30):
        await until(lambda: _no_sessions(shared))  # the earlier tests' sessions have all ended
        for _ in range(8):
            try:
                admitted.append(await session(shared.port))
            except InvalidStatus as exc:
                assert exc.response.status_code == 503
                refused += 1
        assert (len(admitted), refused) == (3, 5)  # one limit for the whole proxy, not 3 per worker
        workers = shared.workers()
        owners = [connection_owner(shared.port, c.local_address[1], workers) for c in admitted]
        victim = max(set(owners), key=owners.count)
        assert victim is not None
        counted = _sessions_counted(await scrape(shared))
        started = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        survivors = [c for c, owner in zip(admitted, owners, strict=True) if owner != victim]
        await until(lambda: len(shared.workers()) == 2 and victim not in shared.workers())
        await until(lambda: _ready(shared))
        respawned = time.monotonic() - started
        text = await scrape(shared)
        assert metric(text, "realtime_proxy_worker_restarts_total") == 1
        assert _sessions_counted(text) >= counted  # the dead worker's counters stay in the sum
        # The killed worker's sessions no longer count: exactly the free slots are admitted again.
        again = []
        for _ in range(4):
            with contextlib.suppress(InvalidStatus):
                again.append(await session(shared.port))
        assert len(again) == 3 - len(survivors)
        for client in [*survivors, *again]:
            await client.close()
    assert respawned < 10


def _sessions_counted(text: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("realtime_proxy_sessions_total{")
    )


async def _no_sessions(run: Supervised) -> bool:
    return metric(await scrape(run), "realtime_proxy_sessions_active") == 0


async def _ready(run: Supervised) -> bool:
    return (await http_get(run.metrics_port, "/readyz"))[0] == 200


async def test_sighup_restarts_the_workers_gracefully(shared: Supervised) -> None:
    async with asyncio.timeout(30):
        await until(lambda: _ready(shared))
        before = set(shared.workers())
        old_session = await session(shared.port)
        os.kill(shared.proc.pid, signal.SIGHUP)
        await until(lambda: _reloads(shared), timeout=20)
        fresh = await session(shared.port)
        await fresh.close()
        # The old worker drains its session for the grace period (0.5 s), then closes it with 1001.
        assert await closed_with(old_session) == (1001, "proxy shutting down")
        await until(lambda: not before & set(shared.workers()))
        assert len(shared.workers()) == 2 and shared.proc.poll() is None
        # The old workers' last counts (sent as they stopped) stay in the sum: the drained session too.
        await until(lambda: _shutdown_counted(shared))
        assert await _ready(shared)


async def _shutdown_counted(run: Supervised) -> bool:
    return metric(await scrape(run), 'realtime_proxy_sessions_total{outcome="shutdown"}') >= 1


async def _reloads(run: Supervised) -> bool:
    return metric(await scrape(run), 'realtime_proxy_reloads_total{result="ok"}') == 1


async def test_workers_exit_when_the_supervisor_is_killed(shared: Supervised) -> None:
    workers = shared.workers()
    assert len(workers) == 2
    os.kill(shared.proc.pid, signal.SIGKILL)
    await until(lambda: shared.tagged() == [], timeout=10)  # PR_SET_PDEATHSIG: SIGTERM, a 0.5 s drain
    with socket.create_server(("127.0.0.1", shared.port)):
        pass  # and the port is free for the next instance


# -- start-up -----------------------------------------------------------------------------------


async def test_console_log_format_with_two_workers_starts_serves_and_stops() -> None:
    run = listening(start("--fake-upstream", "--log-format", "console", *LOOPBACK, env=TWO), timeout=20)
    try:
        client = await session(run.port)
        await client.close()
        line = read_until(run, re.compile(r"session_closed"), timeout=10)
        assert not line.startswith("{") and "worker=" in line  # a worker's line, console-formatted
        assert run.stop() == 0
        assert run.tagged() == []
    finally:
        run.kill_all()


async def test_worker_lines_follow_the_terminal() -> None:
    """`auto` on a terminal: every line console-formatted, the workers' too."""
    controller, terminal = pty.openpty()
    try:
        run = start("--fake-upstream", *LOOPBACK, env=TWO, stdout=terminal)
        try:
            listening(run, fd=controller)
            client = await session(run.port)
            await client.close()
            read_until(run, re.compile(r"session_closed"), fd=controller, timeout=10)
            assert run.stop() == 0
            worker_lines = [line for line in run.lines if "worker=" in line]
            assert worker_lines
            assert not any(line.lstrip().startswith("{") for line in run.lines)
        finally:
            run.kill_all()
    finally:
        os.close(terminal)
        os.close(controller)


async def test_failed_starts_stop_every_worker_and_sigterm_during_start_orphans_none() -> None:
    taken = socket.create_server(("127.0.0.1", 0))
    try:
        port = taken.getsockname()[1]
        run = start("--fake-upstream", "--host", "127.0.0.1", "--port", "0", "--metrics-port", str(port),
                    "--log-format", "json", env=TWO)  # fmt: skip
        failed = [e for e in json_lines(finish(run)) if e["event"] == "startup_failed"]
        assert run.proc.returncode == 1 and f"metrics port {port}" in str(failed[0]["error"])
        assert run.tagged() == []
    finally:
        taken.close()
    # A worker that cannot start (an unreadable CA bundle): the others stop, the port is free.
    env = {**TWO, "REALTIME_PROXY_UPSTREAM_CA_BUNDLE": "/nonexistent/ca.pem"}
    run = start("--log-format", "json", *LOOPBACK, env=env)
    failed = [e for e in json_lines(finish(run)) if e["event"] == "startup_failed"]
    assert run.proc.returncode == 1 and "before it was ready" in str(failed[-1]["error"]), failed
    assert run.tagged() == []
    # SIGTERM while the workers are still starting: every one of them stops.
    run = start("--fake-upstream", "--log-format", "json", *LOOPBACK, env=TWO)
    try:
        await until(lambda: len(run.workers()) >= 1, timeout=10, step=0.005)
        run.proc.terminate()
        assert run.proc.wait(15) == 0
        await until(lambda: tagged_pids(run.tag) == [], timeout=10)
    finally:
        run.kill_all()


async def test_sighup_to_a_single_process_is_logged_and_ignored() -> None:
    async with proxy_process("--fake-upstream", "--log-format", "json", *LOOPBACK) as running:
        running.proc.send_signal(signal.SIGHUP)
        await eventually(lambda: any('"sighup_ignored"' in line for line in running.lines))
        client = await session(running.port)
        await client.close()
        assert await running.stop() == 0

"""Helpers for the supervisor tests: a multi-worker proxy run as a plain subprocess (any log format,
any stdout), the processes it started found by a tag in their environment (they outlive a killed
supervisor), and which worker owns a client's connection (from /proc/net/tcp and fd links)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import select
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from tests.e2e.helpers import REPO, proxy_command

TAG_ENV = "RTP_TEST_TAG"  # not REALTIME_PROXY_*: that prefix is for settings
LISTENING = re.compile(r"\bproxy_listening\b")
METRICS_PORT = re.compile(r"\bmetrics_port\"?[=:]\s*(\d+)")
PORT = re.compile(r"[\s,{]\"?port\"?[=:]\s*(\d+)")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class Supervised:
    proc: subprocess.Popen[bytes]
    tag: str
    port: int = 0
    metrics_port: int = 0
    lines: list[str] = field(default_factory=list)

    def tagged(self) -> list[int]:
        """Every live process started for this run (the supervisor and its workers)."""
        return tagged_pids(self.tag)

    def workers(self) -> list[int]:
        return [pid for pid in self.tagged() if pid != self.proc.pid]

    def stop(self, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.proc.wait(timeout)

    def kill_all(self) -> None:
        """SIGKILL whatever is left of the run, and close its pipes."""
        for pid in self.tagged():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


def start(
    *args: str, env: dict[str, str] | None = None, stdout: int | IO[bytes] = subprocess.PIPE
) -> Supervised:
    tag = uuid.uuid4().hex
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("REALTIME_PROXY_")}
    full_env |= {"PYTHONPATH": str(REPO), TAG_ENV: tag, **(env or {})}
    proc = subprocess.Popen(
        proxy_command(*args), stdout=stdout, stderr=subprocess.PIPE, env=full_env, cwd=REPO
    )
    return Supervised(proc, tag)


def finish(run: Supervised, timeout: float = 30) -> list[str]:
    """Wait for a run that should exit by itself; its stdout lines. Killed (and failed) if it does not."""
    try:
        out, _ = run.proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running after {timeout} s") from None
    finally:
        run.kill_all()
    return out.decode(errors="replace").splitlines()


def read_until(run: Supervised, pattern: re.Pattern[str], timeout: float = 20, fd: int | None = None) -> str:
    """Lines of the run's stdout (or `fd`) until one matches; AssertionError after `timeout`."""
    source = fd if fd is not None else run.proc.stdout.fileno()  # type: ignore[union-attr]
    deadline, buffer = time.monotonic() + timeout, b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([source], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        try:
            chunk = os.read(source, 65536)
        except OSError:  # a pty whose other side closed
            chunk = b""
        if not chunk:
            break
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        for raw in complete:
            line = ANSI.sub("", raw.decode(errors="replace").rstrip("\r"))  # a terminal's colours
            run.lines.append(line)
            if pattern.search(line):
                return line
    raise AssertionError(f"no line matching {pattern.pattern!r} within {timeout} s: {run.lines[-20:]}")


def listening(run: Supervised, fd: int | None = None, timeout: float = 20) -> Supervised:
    """Wait for the supervisor's proxy_listening line (JSON or console); note its ports."""
    try:
        line = read_until(run, LISTENING, timeout, fd)
    except BaseException:
        run.kill_all()
        raise
    run.metrics_port = int(METRICS_PORT.search(line).group(1))  # type: ignore[union-attr]
    run.port = int(PORT.search(line).group(1))  # type: ignore[union-attr]
    return run


def tagged_pids(tag: str) -> list[int]:
    needle = f"{TAG_ENV}={tag}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if needle in (entry / "environ").read_bytes().split(b"\0"):
                    state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                    if state != "Z":
                        found.append(int(entry.name))
    return found


def connection_owner(server_port: int, client_port: int, pids: list[int]) -> int | None:
    """The pid whose fds hold the server side of the loopback connection from `client_port`."""
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for row in Path(table).read_text().splitlines()[1:]:
                cols = row.split()
                local, remote = int(cols[1].split(":")[1], 16), int(cols[2].split(":")[1], 16)
                if local == server_port and remote == client_port:
                    inode = cols[9]
    if inode is None:
        return None
    link = f"socket:[{inode}]"
    for pid in pids:
        with contextlib.suppress(OSError):
            if any(os.readlink(fd) == link for fd in Path(f"/proc/{pid}/fd").iterdir()):
                return pid
    return None


async def until(predicate: object, timeout: float = 10, step: float = 0.02) -> None:
    """Poll a sync or async predicate."""
    async with asyncio.timeout(timeout):
        while True:
            value = predicate()  # type: ignore[operator]
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return
            await asyncio.sleep(step)


def metric(text: str, name: str) -> float:
    """One sample's value (name with its labels as exposed) from an exposition."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise KeyError(name)


def json_lines(lines: list[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in lines if line.startswith("{")]

"""Small test-only servers and clients for the end-to-end tests: a recording echo upstream, a raw
HTTP upgrade writer, polling with a deadline, and a `realtime-proxy` subprocess runner."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

REPO = Path(__file__).resolve().parents[2]
# Whatever environment runs the tests (a venv anywhere, CI's interpreter): its scripts sit beside its
# python. Not resolved: a venv's python is a symlink to the base interpreter.
SCRIPTS = Path(sys.executable).parent
SECRET = "sk-test-SECRET-abc123"
AUTH = {"Authorization": f"Bearer {SECRET}"}


@dataclass
class UpstreamConn:
    """One connection the EchoUpstream accepted: what it was sent, and how it ended."""

    ws: ServerConnection
    path: str
    headers: dict[str, str]
    subprotocols: list[str]
    received: list[str | bytes] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str | None = None
    closed: asyncio.Event = field(default_factory=asyncio.Event)


Behaviour = Callable[[UpstreamConn], Awaitable[None]]


class EchoUpstream:
    """A tiny Realtime-less upstream: records every handshake and frame, echoes frames back (text as
    text, binary as binary), or runs a scripted `behaviour` instead."""

    def __init__(
        self,
        *,
        echo: bool = True,
        behaviour: Behaviour | None = None,
        ssl_context: ssl.SSLContext | None = None,
        max_size: int | None = 64 * 1024 * 1024,
        ping_interval: float | None = None,
    ) -> None:
        self.echo, self.behaviour, self.ssl_context = echo, behaviour, ssl_context
        self.max_size, self.ping_interval = max_size, ping_interval
        self.conns: list[UpstreamConn] = []
        self.arrived: asyncio.Queue[UpstreamConn] = asyncio.Queue()
        self.server: Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        port = next(iter(self.server.sockets)).getsockname()[1]
        return f"{'wss' if self.ssl_context else 'ws'}://127.0.0.1:{port}"

    async def __aenter__(self) -> EchoUpstream:
        self.server = await serve(
            self._handler,
            "127.0.0.1",
            0,
            ssl=self.ssl_context,
            max_size=self.max_size,
            compression=None,
            ping_interval=self.ping_interval,
            select_subprotocol=lambda _c, offered: Subprotocol("realtime") if "realtime" in offered else None,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        async with asyncio.timeout(10):
            await self.server.wait_closed()

    async def next_conn(self, timeout: float = 5) -> UpstreamConn:
        async with asyncio.timeout(timeout):
            return await self.arrived.get()

    async def _handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        headers: dict[str, str] = {}
        for name, value in ws.request.headers.raw_items():
            headers[name.lower()] = f"{headers[name.lower()]}, {value}" if name.lower() in headers else value
        offered = [
            p.strip() for v in ws.request.headers.get_all("Sec-WebSocket-Protocol") for p in v.split(",")
        ]
        conn = UpstreamConn(ws, ws.request.path, headers, [p for p in offered if p])
        self.conns.append(conn)
        self.arrived.put_nowait(conn)
        try:
            if self.behaviour is not None:
                await self.behaviour(conn)
            else:
                async for frame in ws:
                    conn.received.append(frame)
                    if self.echo:
                        await ws.send(frame)
        except ConnectionClosed:
            pass
        finally:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await ws.wait_closed()
            rcvd = ws.protocol.close_rcvd
            if rcvd is not None:
                conn.close_code, conn.close_reason = rcvd.code, rcvd.reason
            conn.closed.set()


async def raw_upgrade(port: int, target: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """Write an HTTP upgrade request by hand (any request target) and return (status, body)."""
    fields = {
        "Host": f"127.0.0.1:{port}",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
        "Authorization": "Bearer " + SECRET,
    }
    for name, value in (headers or {}).items():  # overrides match case-insensitively
        fields = {k: v for k, v in fields.items() if k.lower() != name.lower()} | {name: value}
    lines = [f"GET {target} HTTP/1.1", *(f"{k}: {v}" for k, v in fields.items())]
    async with asyncio.timeout(10):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape"))
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = await reader.readexactly(length) if length else b""
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
    return status, body


async def eventually(predicate: Callable[[], bool], timeout: float = 5, step: float = 0.01) -> None:
    """Poll a condition the code under test exposes no event for (fd counts, RSS, counters)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(step)


def error_body(body: bytes) -> dict[str, Any]:
    data = json.loads(body)
    assert isinstance(data, dict) and "error" in data, body
    return data


@dataclass
class ProxyProcess:
    proc: asyncio.subprocess.Process
    port: int
    metrics_port: int
    lines: list[str]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    async def stop(self, timeout: float = 15) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(timeout):
            return await self.proc.wait()


def proxy_command(*args: str, module: bool = False) -> list[str]:
    if module:
        return [sys.executable, "-m", "realtime_proxy", *args]
    script = shutil.which("realtime-proxy", path=str(SCRIPTS)) or shutil.which("realtime-proxy")
    assert script is not None, "the realtime-proxy script is not installed (pip install --no-deps -e .)"
    return [script, *args]


@contextlib.asynccontextmanager
async def proxy_process(
    *args: str, module: bool = False, env: dict[str, str] | None = None
) -> AsyncIterator[ProxyProcess]:
    """Run the real CLI on ports 0/0 and wait for its `proxy_listening` JSON line."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("REALTIME_PROXY_")}
    # The venv's editable-install finder may predate realtime_proxy/__init__.py (it then maps `proxy` as a
    # namespace package and `from realtime_proxy import __version__` fails): put the source tree first.
    full_env["PYTHONPATH"] = str(REPO)
    full_env["REALTIME_PROXY_WORKERS"] = "1"  # one process, so that pid, fds and RSS are the proxy's
    full_env.update(env or {})
    proc = await asyncio.create_subprocess_exec(
        *proxy_command(*args, module=module),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=full_env,
        cwd=REPO,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    drain: asyncio.Task[None] | None = None
    try:
        async with asyncio.timeout(15):
            while True:
                raw = await proc.stdout.readline()
                if not raw:
                    raise AssertionError(f"proxy exited before listening: {lines}")
                line = raw.decode(errors="replace")
                lines.append(line)
                if '"proxy_listening"' in line:
                    event = json.loads(line)
                    break

        async def keep_reading() -> None:
            assert proc.stdout is not None
            while raw := await proc.stdout.readline():
                lines.append(raw.decode(errors="replace"))

        # Keep the pipe drained so logging never blocks the proxy.
        drain = asyncio.create_task(keep_reading())
        yield ProxyProcess(proc, int(event["port"]), int(event["metrics_port"]), lines)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
        async with asyncio.timeout(10):
            await proc.wait()
        if drain is not None:
            async with asyncio.timeout(5):
                await drain


async def http_get(port: int, path: str) -> tuple[int, bytes]:
    async with asyncio.timeout(10):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await writer.drain()
        raw = await reader.read()
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def self_signed(tmp: Path, name: str = "localhost") -> tuple[Path, Path]:
    """A CA-less self-signed cert for 127.0.0.1/localhost made with the openssl CLI."""
    cert, key = tmp / f"{name}.pem", tmp / f"{name}.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    return cert, key


async def open_session(proxy: Any, headers: dict[str, str] | None = None) -> ClientConnection:
    """A raw client through `proxy`, past its session.created."""
    client = await connect(proxy.realtime_url, additional_headers=headers or AUTH, max_size=None)
    assert json.loads(await client.recv())["type"] == "session.created"
    return client


async def closed_with(client: ClientConnection) -> tuple[int | None, str | None]:
    """Read until the proxy closes the client; the code and reason it used."""
    with contextlib.suppress(ConnectionClosed):
        while True:
            await client.recv()
    return client.close_code, client.close_reason

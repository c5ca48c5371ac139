"""Memory of the real proxy process under three WebSocket floods from one client:

- `pings`: the client pings as fast as it can for `--seconds` and never reads (keepalive off);
- `empty-fragments`: a text message of 1,000,000 empty continuation frames;
- `byte-fragments`: a text message of 598,000 one-byte fragments.

    python -m bench.floods [--source DIR]

Prints VmRSS growth (and peak) of the proxy per flood. `--source` runs the proxy from another
checkout (e.g. main, before the bounds)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import socket
import struct
import tempfile
import time
from pathlib import Path

from bench.procs import PY, ROOT, Server
from bench.procstat import cpu_seconds, memory_kib

MASK = b"\x01\x02\x03\x04"


def frame(opcode: int, payload: bytes, *, fin: bool) -> bytes:
    """A masked client frame, payload under 126 bytes."""
    body = bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))
    return struct.pack("!BB", (0x80 if fin else 0) | opcode, 0x80 | len(payload)) + MASK + body


async def open_raw(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the kernel holds little for us
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET /v1/realtime?model=gpt-realtime HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: Bearer sk-bench\r\n\r\n".encode()
    )
    await reader.readuntil(b"\r\n\r\n")
    return reader, writer


async def send_for(writer: asyncio.StreamWriter, data: bytes, seconds: float) -> None:
    """Write `data` repeatedly for `seconds` (or until the proxy stops reading or closes)."""
    deadline = time.monotonic() + seconds
    with contextlib.suppress(ConnectionError, TimeoutError):
        while time.monotonic() < deadline:
            writer.write(data)
            async with asyncio.timeout(max(deadline - time.monotonic(), 0.01)):
                await writer.drain()


async def flood(port: int, pid: int, kind: str, seconds: float) -> dict[str, object]:
    _reader, writer = await open_raw(port)
    await asyncio.sleep(0.5)
    before = memory_kib(pid)
    writer.transport.pause_reading()  # never reads: everything the proxy sends us piles up
    started = time.monotonic()
    if kind == "pings":
        await send_for(writer, frame(0x9, b"p" * 125, fin=True) * 1000, seconds)
    else:
        count, piece = (1_000_000, b"") if kind == "empty-fragments" else (598_000, b"x")
        data = (
            frame(0x1, b'{"', fin=False) + frame(0x0, piece, fin=False) * count + frame(0x0, b"}", fin=True)
        )
        writer.write(data)  # once: one message
        with contextlib.suppress(ConnectionError, TimeoutError):
            async with asyncio.timeout(seconds):
                await writer.drain()
    sent_s = time.monotonic() - started
    await settled(pid)
    memory = memory_kib(pid)
    writer.transport.abort()
    return {
        "flood": kind,
        "rss_growth_mib": round((memory["VmRSS"] - before["VmRSS"]) / 1024, 1),
        "peak_growth_mib": round((memory["VmHWM"] - before["VmHWM"]) / 1024, 1),
        "seconds": round(sent_s, 1),
    }


async def settled(pid: int, timeout: float = 60.0) -> None:
    """Until the proxy has worked through what it was sent (its CPU time stops growing)."""
    deadline, last = time.monotonic() + timeout, cpu_seconds(pid)
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        now = cpu_seconds(pid)
        if now - last < 0.03:
            return
        last = now


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.floods")
    parser.add_argument("--source", default=str(ROOT), help="checkout the proxy runs from")
    parser.add_argument("--seconds", type=float, default=12.0)
    args = parser.parse_args(argv)
    source = Path(args.source)
    workdir = Path(tempfile.mkdtemp(prefix="bench-floods-"))
    env = {"PYTHONPATH": str(source), "REALTIME_PROXY_WORKERS": "1", "REALTIME_PROXY_PING_INTERVAL": "0"}
    for kind in ("pings", "empty-fragments", "byte-fragments"):
        argv_proxy = [PY, "-m", "realtime_proxy", "--host", "127.0.0.1", "--port", "0", "--metrics-port", "0",
                      "--fake-upstream", "--log-format", "json"]  # fmt: skip
        proxy = Server(f"proxy-{kind}", argv_proxy, workdir, env=env, cwd=source)
        try:
            proxy.wait_port()
            result = asyncio.run(flood(proxy.port, proxy.pid, kind, args.seconds))
            print(json.dumps({"source": str(source), **result}), flush=True)
        finally:
            proxy.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""One worker process as the supervisor sees it: spawned with its inherited fds, ready when it says
so on its pipe, scraped over its private metrics port, stopped with SIGTERM then SIGKILL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time

from realtime_proxy.commands.worker_link import WorkerLink
from realtime_proxy.edge.shared_limits import Zone

FINAL_LIMIT = 16 * 1024 * 1024  # a final exposition larger than this is cut (and then fails to parse)


class WorkerProc:
    def __init__(self, index: int, slot: int, proc: asyncio.subprocess.Process, ready: asyncio.StreamReader):
        self.index, self.slot, self.proc = index, slot, proc
        self._ready_pipe = ready
        self.metrics_port = 0
        self.ready = False
        self.handled = False  # its death was dealt with (respawn scheduled)
        self.started = time.monotonic()
        self.exited = asyncio.ensure_future(proc.wait())
        self.final: asyncio.Future[bytes] | None = None  # its last exposition, sent as it stops
        self.last_scrape = ""

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def wait_ready(self, patience: float) -> bool:
        """True once the worker reported itself serving; False if it exited or took too long."""
        try:
            async with asyncio.timeout(patience):
                line = await self._ready_pipe.readline()
            self.metrics_port = int(json.loads(line)["metrics_port"])
        except (TimeoutError, ValueError, KeyError, TypeError):
            return False
        self.ready = True
        self.final = asyncio.ensure_future(_read_to_eof(self._ready_pipe))
        return True

    async def last_exposition(self) -> str:
        """What the worker sent as it stopped, else (killed) what the supervisor last scraped."""
        if self.final is not None:
            with contextlib.suppress(TimeoutError, OSError, ValueError):
                async with asyncio.timeout(2):
                    text = (await self.final).decode()
                if text:
                    return text
        return self.last_scrape

    def signal(self, signum: int) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signum)


async def _read_to_eof(reader: asyncio.StreamReader) -> bytes:
    """Everything until EOF, kept to FINAL_LIMIT bytes (the rest is read and dropped)."""
    data = bytearray()
    while chunk := await reader.read(65536):
        if len(data) < FINAL_LIMIT:
            data += chunk[: FINAL_LIMIT - len(data)]
    return bytes(data)


async def spawn(
    index: int, argv: list[str], sock: socket.socket, zone: Zone, slot: int, port: int
) -> WorkerProc:
    """`python -m realtime_proxy` with the same flags as one process on the inherited socket; its
    stdout and stderr are the supervisor's own (its lines follow --log-format like ours)."""
    read_end, write_end = os.pipe()
    try:
        link = WorkerLink(index, sock.fileno(), write_end, zone.fd, slot, zone.capacity, os.getpid())
        env = {**os.environ, **link.env(), "REALTIME_PROXY_METRICS_HOST": "127.0.0.1"}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "realtime_proxy", *argv,
            "--port", str(port), "--metrics-port", "0", "--workers", "1",
            env=env, pass_fds=(sock.fileno(), write_end, zone.fd),
        )  # fmt: skip
    except BaseException:
        os.close(read_end)
        raise
    finally:
        os.close(write_end)  # the worker holds the only write end: EOF if it dies before ready
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_end, "rb"))
    return WorkerProc(index, slot, proc, reader)


async def stop_all(workers: list[WorkerProc], patience: float) -> None:
    """SIGTERM every worker (each drains its sessions for the grace period), kill stragglers."""
    for worker in workers:
        worker.signal(signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(patience):
            await asyncio.gather(*(w.exited for w in workers))
    for worker in workers:
        if worker.proc.returncode is None:
            worker.signal(signal.SIGKILL)
            async with asyncio.timeout(10):
                await worker.exited


async def http_get(port: int, path: str) -> str:
    """A worker's /metrics or /readyz over loopback."""
    async with asyncio.timeout(5):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: worker\r\n\r\n".encode())
            raw = await reader.read()
        finally:
            writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise ConnectionError(head[:40].decode(errors="replace"))
    return body.decode()

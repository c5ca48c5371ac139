"""Every core: N worker processes share the listening port (SO_REUSEPORT, the kernel spreads
connections), one supervisor serves /metrics summed over the workers, forwards their log lines and
stops them all gracefully on SIGTERM.

Each worker is `python -m realtime_proxy` with the same flags, `--workers 1`, the concrete port and a private
metrics port on 127.0.0.1 (read from its `proxy_listening` line).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import socket
import sys
from pathlib import Path

from realtime_proxy.ops.logs import get_logger
from realtime_proxy.ops.metrics_merge import merge_exposition
from realtime_proxy.ops.settings import Settings

WORKER_ENV = "REALTIME_WORKER_INDEX"  # not REALTIME_PROXY_*: those are settings
log = get_logger("proxy.workers")


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup v2 `cpu.max` quota."""
    count = len(os.sched_getaffinity(0))
    with contextlib.suppress(OSError, ValueError):
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            count = min(count, max(1, math.ceil(int(quota) / int(period))))
    return count


def worker_count(settings: Settings) -> int:
    if os.environ.get(WORKER_ENV):
        return 1
    return settings.workers or available_cpus()


class Worker:
    def __init__(self, index: int, proc: asyncio.subprocess.Process) -> None:
        self.index, self.proc = index, proc
        self.metrics_port = 0
        self.listening = asyncio.Event()
        self.pump: asyncio.Task[None] | None = None

    async def forward_lines(self) -> None:
        """Pass the worker's log lines through (one JSON object per line); note its metrics port."""
        assert self.proc.stdout is not None
        while raw := await self.proc.stdout.readline():
            if not self.listening.is_set() and b'"proxy_listening"' in raw:
                self.metrics_port = int(json.loads(raw)["metrics_port"])
                self.listening.set()
                continue
            sys.stdout.buffer.write(raw)
            sys.stdout.flush()


def _reserve_port(host: str, port: int) -> socket.socket:
    """Bind (not listen) with SO_REUSEPORT so that port 0 becomes one concrete port for every worker."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


async def start_workers(settings: Settings, count: int, argv: list[str]) -> tuple[int, list[Worker]]:
    reserved = _reserve_port(settings.host, settings.port)
    port = reserved.getsockname()[1]
    workers: list[Worker] = []
    try:
        for index in range(count):
            env = {**os.environ, WORKER_ENV: str(index + 1), "REALTIME_PROXY_METRICS_HOST": "127.0.0.1"}
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "realtime_proxy",
                *argv,
                "--port",
                str(port),
                "--metrics-port",
                "0",
                "--workers",
                "1",
                stdout=asyncio.subprocess.PIPE,
                env=env,
            )
            worker = Worker(index + 1, proc)
            worker.pump = asyncio.create_task(worker.forward_lines())
            workers.append(worker)
        async with asyncio.timeout(30):
            for worker in workers:
                await asyncio.wait(
                    [asyncio.create_task(worker.listening.wait()), asyncio.create_task(worker.proc.wait())],
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if not worker.listening.is_set():
                    raise RuntimeError(f"worker {worker.index} exited before listening")
    except BaseException:
        await stop_workers(workers, 5.0)
        raise
    finally:
        reserved.close()
    return port, workers


async def stop_workers(workers: list[Worker], patience: float) -> None:
    """SIGTERM every worker (each drains its sessions for the grace period), kill stragglers."""
    for worker in workers:
        if worker.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                worker.proc.send_signal(signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(patience):
            await asyncio.gather(*(w.proc.wait() for w in workers))
    for worker in workers:
        if worker.proc.returncode is None:
            worker.proc.kill()
            await worker.proc.wait()
        if worker.pump is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(worker.pump, 5)


async def scrape_all(workers: list[Worker]) -> bytes:
    """Every worker's /metrics, summed into one exposition."""
    texts = await asyncio.gather(*(_get(w.metrics_port, "/metrics") for w in workers), return_exceptions=True)
    return merge_exposition([t for t in texts if isinstance(t, str)]).encode()


async def all_ready(workers: list[Worker]) -> bool:
    if any(w.proc.returncode is not None for w in workers):
        return False
    answers = await asyncio.gather(
        *(_get(w.metrics_port, "/readyz") for w in workers), return_exceptions=True
    )
    return all(a == "ready\n" for a in answers)


async def _get(port: int, path: str) -> str:
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


async def supervise(settings: Settings, count: int, argv: list[str]) -> int:
    """Run `count` workers until SIGTERM/SIGINT (or a worker dies); serve the summed metrics."""
    from realtime_proxy import __version__
    from realtime_proxy.edge.health import HealthServer

    port, workers = await start_workers(settings, count, argv)
    health = HealthServer(None, lambda: all_ready(workers), scrape=lambda: scrape_all(workers))
    await health.start(settings.metrics_host, settings.metrics_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    died = [asyncio.create_task(w.proc.wait()) for w in workers]
    log.info(
        "proxy_listening",
        host=settings.host,
        port=port,
        metrics_port=health.port,
        workers=count,
        version=__version__,
    )
    stopping = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([stopping, *died], return_when=asyncio.FIRST_COMPLETED)
    failed = stopping not in done
    if failed:
        log.error("worker_exited", codes=[w.proc.returncode for w in workers])
    log.info("shutdown_started", workers=count, grace_s=settings.shutdown_grace)
    # Each worker drains for the grace period, then gets a short bound to close; then it is killed.
    await stop_workers(workers, settings.shutdown_grace + 5.0)
    stopping.cancel()
    await health.stop()
    log.info("shutdown_complete")
    return 1 if failed else 0

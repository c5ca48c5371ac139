"""Where an idle session's memory goes: the proxy in-process against an in-process upstream that
accepts and stays silent, N idle sessions opened, and tracemalloc's growth grouped by module.

    python -m bench.idle_breakdown [--sessions 200]

Python objects only (tracemalloc): RSS also holds the kernel-side socket buffers, allocator slack
and the interpreter's free lists, which `python -m bench --scenarios idle` measures."""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tracemalloc
from collections import Counter
from typing import TextIO

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve

from realtime_proxy.edge.server import ProxyServer
from realtime_proxy.observe.logs import configure_logging
from realtime_proxy.settings import load_settings

API_KEY = "sk-bench-idle"


def owner(filename: str) -> str:
    for marker in ("realtime_proxy/", "site-packages/"):
        if marker in filename:
            rest = filename.split(marker, 1)[1]
            return rest.split("/", 1)[0] + ("/" + rest.split("/")[1] if rest.count("/") >= 1 else "")
    return "stdlib: " + filename.rsplit("/", 1)[-1]


async def silent(connection: ServerConnection) -> None:
    await connection.wait_closed()


async def measure(n: int, *, level: str = "warning", stream: TextIO | None = None) -> Counter[str]:
    """Bytes of Python objects the proxy allocated for `n` idle sessions (still open), by owner."""
    configure_logging(log_format="json", level=level, stream=stream)
    async with serve(silent, "127.0.0.1", 0, ping_interval=None) as upstream:
        port = upstream.sockets[0].getsockname()[1]
        flags = {"host": "127.0.0.1", "port": 0, "upstream_url": f"ws://127.0.0.1:{port}", "ping_interval": 0}
        server = ProxyServer(load_settings(None, environ={}, flags=flags))
        await server.start()
        url = f"ws://127.0.0.1:{server.port}/v1/realtime?model=gpt-realtime"
        headers = {"Authorization": f"Bearer {API_KEY}"}
        clients: list[ClientConnection] = []

        async def opened() -> ClientConnection:
            return await connect(url, additional_headers=headers, ping_interval=None)

        try:
            async with asyncio.timeout(30 + n / 10):
                clients += [
                    await connect(url, additional_headers=headers, ping_interval=None) for _ in range(5)
                ]
                await _settled(server, len(clients))
                gc.collect()
                tracemalloc.start(30)
                before = tracemalloc.take_snapshot()
                clients += [
                    await connect(url, additional_headers=headers, ping_interval=None) for _ in range(n)
                ]
                await _settled(server, len(clients))
                gc.collect()
                after = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
            for client in clients:
                await client.close()
            await server.shutdown(grace=0)
    by: Counter[str] = Counter()
    for stat in after.compare_to(before, "traceback"):
        # The proxy's own: allocated with one of its frames on the stack (the in-process client
        # and upstream never call into it). Listed by the innermost frame's module.
        if any("realtime_proxy/" in frame.filename for frame in stat.traceback):
            by[owner(stat.traceback[-1].filename)] += stat.size_diff
    return by


async def _settled(server: ProxyServer, sessions: int) -> None:
    """Every session started (its relay registered), polled: the server has no event for it."""
    while len(server.relays) < sessions:
        await asyncio.sleep(0.005)


async def run(n: int) -> list[str]:
    by = await measure(n)
    rows = ["| allocated in | bytes per session |", "|---|---|"]
    rows += [f"| {name} | {size / n:,.0f} |" for name, size in by.most_common(24)]
    rows.append(f"| **total (Python objects of the proxy)** | **{sum(by.values()) / n:,.0f}** |")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.idle_breakdown")
    parser.add_argument("--sessions", type=int, default=200)
    args = parser.parse_args(argv)
    print("\n".join(asyncio.run(run(args.sessions))))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A plain-HTTP burst against a slow upstream, and what it does to a WebSocket session on the same
proxy. Three processes: the fake upstream (HTTP answers after `--latency`, WebSocket sessions
as usual), the real proxy CLI (one worker), and this load generator.

    python -m bench.burst [--requests 500] [--latency 0.2] [--source DIR] [--max-concurrent N]

While `--requests` GETs of /v1/models are all in flight at once, a WebSocket session sends
session.update and waits for session.updated, again and again: its round trips during the burst
are compared with those before it. `--source` runs the proxy from another checkout (e.g. main
before the admission bound); `--max-concurrent` sets `http.max_concurrent_requests`.

The upstream must be a separate process: the fake run in-process (`--fake-upstream`) shares the
proxy's event loop and hides the effect."""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

from bench.procs import PY, ROOT, Server
from bench.procstat import cpu_seconds

AUTH = {"Authorization": "Bearer sk-bench"}


async def serve_upstream(latency: float) -> None:
    from realtime_proxy.fake_upstream import FakeUpstream

    async with FakeUpstream() as fake:
        fake.http.reply_delay = latency
        print(json.dumps({"port": fake.port}), flush=True)
        await asyncio.Event().wait()


async def round_trips(url: str, stop: asyncio.Event, out: list[float]) -> None:
    async with connect(url, additional_headers=AUTH, max_size=None) as ws:
        await ws.recv()  # session.created
        update = json.dumps({"type": "session.update", "session": {"type": "realtime", "instructions": "x"}})
        while not stop.is_set():
            started = time.perf_counter()
            await ws.send(update)
            while '"session.updated"' not in str(await ws.recv()):
                pass
            out.append(time.perf_counter() - started)
            await asyncio.sleep(0.02)


async def load(port: int, pid: int, requests: int) -> dict[str, object]:
    url = f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime"
    before: list[float] = []
    during: list[float] = []
    stop = asyncio.Event()
    quiet = asyncio.create_task(round_trips(url, stop, before))
    await asyncio.sleep(2)
    stop.set()
    await quiet
    stop = asyncio.Event()
    probe = asyncio.create_task(round_trips(url, stop, during))
    limits = httpx.Limits(max_connections=requests + 10, max_keepalive_connections=0)
    timeout = httpx.Timeout(60)
    cpu_before = cpu_seconds(pid)
    started = time.perf_counter()
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=timeout
    ) as client:

        async def one() -> int:
            try:
                return (await client.get("/v1/models", headers=AUTH)).status_code
            except httpx.HTTPError:
                return 0

        statuses = await asyncio.gather(*(one() for _ in range(requests)))
    wall = time.perf_counter() - started
    cpu = cpu_seconds(pid) - cpu_before
    stop.set()
    await probe
    return {
        "statuses": dict(collections.Counter(statuses)),
        "burst_wall_s": round(wall, 2),
        "proxy_cpu_s": round(cpu, 2),
        "cpu_ms_per_request": round(cpu / requests * 1000, 2),
        "ws_rtt_quiet_p50_ms": round(statistics.median(before) * 1000, 1),
        "ws_rtt_burst_p50_ms": round(statistics.median(during) * 1000, 1) if during else None,
        "ws_rtt_burst_max_ms": round(max(during) * 1000, 1) if during else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.burst")
    parser.add_argument("role", nargs="?", default="load", choices=("load", "upstream"))
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--source", default=str(ROOT), help="checkout the proxy runs from")
    parser.add_argument("--max-concurrent", type=int, default=0, help="http.max_concurrent_requests")
    args = parser.parse_args(argv)
    if args.role == "upstream":
        asyncio.run(serve_upstream(args.latency))
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="bench-burst-"))
    upstream = Server(
        "upstream", [PY, "-m", "bench.burst", "upstream", "--latency", str(args.latency)], workdir
    )
    servers = [upstream]
    try:
        upstream.wait_port()
        source = Path(args.source)
        env = {"PYTHONPATH": str(source), "REALTIME_PROXY_WORKERS": "1"}
        if args.max_concurrent:
            env["REALTIME_PROXY_HTTP__MAX_CONCURRENT_REQUESTS"] = str(args.max_concurrent)
        upstream_url = f"ws://127.0.0.1:{upstream.port}"
        argv_proxy = [PY, "-m", "realtime_proxy", "--host", "127.0.0.1", "--port", "0", "--metrics-port", "0",
                      "--upstream-url", upstream_url, "--log-format", "json"]  # fmt: skip
        proxy = Server(
            "proxy", argv_proxy, workdir, env={**env, "PATH": os.environ.get("PATH", "")}, cwd=source
        )
        servers.append(proxy)
        proxy.wait_port()
        result = asyncio.run(load(proxy.port, proxy.pid, args.requests))
        print(
            json.dumps({"source": str(source), "max_concurrent": args.max_concurrent or "default", **result})
        )
    finally:
        for server in servers:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

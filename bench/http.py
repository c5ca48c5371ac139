"""HTTP pass-through overhead: latency and proxy CPU per request, by upstream client. Processes: the
fake upstream (HTTP on its WebSocket port), one proxy HTTP side (standalone listener) per column,
and this load generator.

    python -m bench.http [--requests 2000] [--rounds 3] [--uvloop] [--baseline-src DIR] [--only-proxy]

Columns: `direct` (client -> fake), `proxy` (client -> proxy -> fake, the shipped client (llhttp),
edge/http/client.py), `httpx` (the same proxy with its forward step done by httpx's transport, the
client it replaced) and `aiohttp` (by aiohttp's client; skipped when not installed). With
`--rounds R` the columns are measured in turn R times and each figure is the median of its rounds.
`--baseline-src DIR` adds `proxy-before`: the proxy of another checkout (e.g. `git worktree add
/tmp/before main`) against the same upstream, in the same rounds; `--only-proxy` leaves out the
httpx and aiohttp columns."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.bare_relay import run_loop
from bench.procs import PY, ROOT, Server
from bench.procstat import cpu_seconds

SESSION = b'{"session": {"type": "realtime", "modalities": ["text"], "instructions": "Be brief."}}'
# What the proxy turns SESSION into: sent by the `direct` column, which has no proxy to repair it.
SESSION_GA = b'{"session": {"type": "realtime", "output_modalities": ["text"], "instructions": "Be brief."}}'
STREAM = b'{"model": "gpt-4o-mini", "input": "hi", "stream": true}'
SCENARIOS = {  # name: (method, path, body)
    "GET /v1/models": ("GET", "/v1/models", None),
    "POST client_secrets (repaired)": ("POST", "/v1/realtime/client_secrets", SESSION),
    "POST /v1/responses (SSE, 8 events)": ("POST", "/v1/responses", STREAM),
}


# -- child processes --------------------------------------------------------------------------


async def serve_upstream() -> None:
    from realtime_proxy.fake_upstream import FakeUpstream

    async with FakeUpstream() as fake:
        fake.http.sse_interval = 0.0
        print(json.dumps({"port": fake.port}), flush=True)
        await asyncio.Event().wait()


def httpx_forward(forwarder: Any) -> Any:
    """The Forwarder's upstream step on httpx's transport (the client before edge/http/client.py)."""
    from realtime_proxy.edge.http.forward import Refused, relayed_headers

    h = forwarder.settings.http
    timeout = httpx.Timeout(
        connect=h.connect_timeout,
        read=h.upstream_read_timeout,
        write=h.client_idle_timeout,
        pool=h.connect_timeout,
    )
    extensions = {"timeout": timeout.as_dict()}
    limits = httpx.Limits(max_connections=h.max_upstream_connections, max_keepalive_connections=32)
    transport = httpx.AsyncHTTPTransport(trust_env=False, limits=limits)

    async def forward(exchange: Any, method: str, url: str, headers: Any, content: Any) -> str:
        request = httpx.Request(method, url, headers=headers, content=content, extensions=extensions)
        try:
            response = await transport.handle_async_request(request)
        except httpx.TransportError:
            raise Refused(502, "upstream_unreachable", "The proxy could not reach the upstream.") from None
        try:
            await exchange.start(response.status_code, relayed_headers(response.headers.raw))
            async for chunk in response.stream:
                await exchange.send(chunk)
            await exchange.finish()
            return "complete"
        finally:
            await response.aclose()

    return forward


def aiohttp_forward(forwarder: Any) -> Any:
    """The Forwarder's upstream step written with aiohttp instead of httpx, for comparison."""
    import aiohttp

    from realtime_proxy.edge.http.forward import Refused, relayed_headers

    session = aiohttp.ClientSession(
        auto_decompress=False, skip_auto_headers=("User-Agent", "Accept-Encoding")
    )

    async def forward(exchange: Any, method: str, url: str, headers: Any, content: Any) -> str:
        try:
            response = await session.request(
                method, url, headers=headers, data=content, allow_redirects=False
            )
        except aiohttp.ClientError:
            raise Refused(502, "upstream_unreachable", "The proxy could not reach the upstream.") from None
        async with response:
            raw = [(k, v) for k, v in response.raw_headers]
            await exchange.start(response.status, relayed_headers(raw))
            async for chunk in response.content.iter_any():
                await exchange.send(chunk)
            await exchange.finish()
            return "complete"

    return forward


async def serve_proxy(upstream_port: int, client: str) -> None:
    from realtime_proxy.core.rules import build_chain
    from realtime_proxy.edge.auth import Admission
    from realtime_proxy.edge.http import HttpService
    from realtime_proxy.observe.logs import configure_logging
    from realtime_proxy.observe.metrics import Metrics
    from realtime_proxy.settings import load_settings

    configure_logging(log_format="json", level="info")  # as deployed: one JSON line per request
    settings = load_settings(None, environ={}, flags={"upstream_url": f"ws://127.0.0.1:{upstream_port}"})
    service = HttpService(settings, build_chain(), Admission(settings.auth), Metrics())
    if client == "aiohttp":
        service.forwarder._forward = aiohttp_forward(service.forwarder)  # type: ignore[method-assign]
    elif client == "httpx":
        service.forwarder._forward = httpx_forward(service.forwarder)  # type: ignore[method-assign]
    server = await asyncio.get_running_loop().create_server(service.factory, "127.0.0.1", 0)
    print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
    await asyncio.Event().wait()


# -- load -------------------------------------------------------------------------------------


async def run_scenario(port: int, method: str, path: str, body: bytes | None, n: int) -> list[float]:
    """Sequential requests on one keep-alive connection; seconds per request."""
    headers = {"Authorization": "Bearer sk-bench", "Content-Type": "application/json"}
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        for i in range(n + n // 10):  # the first tenth warms up
            started = time.perf_counter()
            async with client.stream(method, path, content=body, headers=headers) as response:
                async for _ in response.aiter_raw():
                    pass
            assert response.status_code < 300, response.status_code
            if i >= n // 10:
                latencies.append(time.perf_counter() - started)
    return latencies


def measure(port: int, pid: int | None, n: int) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    for name, (method, path, body) in SCENARIOS.items():
        cpu_before = cpu_seconds(pid) if pid else 0.0
        if pid is None and body == SESSION:
            body = SESSION_GA
        latencies = asyncio.run(run_scenario(port, method, path, body, n))
        cpu = (cpu_seconds(pid) - cpu_before) if pid else 0.0
        latencies.sort()
        results[name] = {
            "p50_ms": statistics.median(latencies) * 1000,
            "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
            "cpu_us_per_request": cpu / (n + n // 10) * 1e6,  # includes the warm-up requests
        }
    return results


def median_of(rounds: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    return {
        name: {key: statistics.median(r[name][key] for r in rounds) for key in rounds[0][name]}
        for name in rounds[0]
    }


def report(columns: dict[str, dict[str, dict[str, float]]]) -> str:
    lines = [
        "| scenario | column | p50 ms | p99 ms | added p50 ms | proxy CPU µs/request |",
        "|---|---|---|---|---|---|",
    ]
    for name in SCENARIOS:
        base = columns["direct"][name]["p50_ms"]
        for column, results in columns.items():
            r = results[name]
            added = "" if column == "direct" else f"{r['p50_ms'] - base:+.3f}"
            cpu = "" if column == "direct" else f"{r['cpu_us_per_request']:.0f}"
            lines.append(f"| {name} | {column} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {added} | {cpu} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.http")
    parser.add_argument("role", nargs="?", default="load", choices=("load", "upstream", "proxy"))
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--upstream-port", type=int, default=0)
    parser.add_argument("--client", default="proxy", choices=("proxy", "httpx", "aiohttp"))
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--uvloop", action="store_true")
    parser.add_argument("--baseline-src", type=Path, default=None)
    parser.add_argument("--only-proxy", action="store_true")
    args = parser.parse_args(argv)
    if args.role == "upstream":
        run_loop(serve_upstream(), use_uvloop=args.uvloop)
        return 0
    if args.role == "proxy":
        run_loop(serve_proxy(args.upstream_port, args.client), use_uvloop=args.uvloop)
        return 0
    loop_flag = ["--uvloop"] if args.uvloop else []
    workdir = Path(tempfile.mkdtemp(prefix="bench-http-"))
    upstream = Server("upstream", [PY, "-m", "bench.http", "upstream", *loop_flag], workdir)
    servers = [upstream]
    try:
        upstream.wait_port()
        clients = ["proxy"]
        if not args.only_proxy:
            clients += ["httpx"] + (["aiohttp"] if _has_aiohttp() else [])
        if args.baseline_src is not None:
            clients.append("proxy-before")
        proxies: dict[str, Server] = {}
        for client in clients:
            port = str(upstream.port)
            src = args.baseline_src.resolve() if client == "proxy-before" else ROOT
            kind = "proxy" if client == "proxy-before" else client
            argv = [PY, "-m", "bench.http", "proxy", "--upstream-port", port, "--client", kind]
            proxies[client] = Server(f"proxy-{client}", [*argv, *loop_flag], workdir, cwd=src)
            servers.append(proxies[client])
            proxies[client].wait_port()
        rounds: dict[str, list[dict[str, dict[str, float]]]] = {"direct": []} | {c: [] for c in clients}
        for _ in range(args.rounds):  # alternating columns: drift on a shared machine hits them all
            rounds["direct"].append(measure(upstream.port, None, args.requests))
            for client, proxy in proxies.items():
                rounds[client].append(measure(proxy.port, proxy.pid, args.requests))
        columns = {column: median_of(results) for column, results in rounds.items()}
        print(report(columns))
    finally:
        for server in servers:
            server.stop()
    return 0


def _has_aiohttp() -> bool:
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())

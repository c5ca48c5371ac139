"""`--workers N`: N processes share the port (SO_REUSEPORT), the supervisor's /metrics sums theirs,
and SIGTERM drains every worker's sessions then closes them with 1001."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from realtime_proxy.commands.workers import available_cpus
from realtime_proxy.observe.metrics_merge import merge_exposition
from tests.e2e.helpers import EchoUpstream, closed_with, eventually, http_get, proxy_process

ARGS = ("--host", "127.0.0.1", "--port", "0", "--metrics-port", "0")


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def samples(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}"] = sample.value
    return out


async def test_two_workers_share_the_port_and_one_metrics_endpoint() -> None:
    env = {"REALTIME_PROXY_WORKERS": "2", "REALTIME_PROXY_SHUTDOWN_GRACE": "0.5"}
    async with (
        EchoUpstream() as upstream,
        proxy_process(*ARGS, "--upstream-url", upstream.url, env=env) as running,
        asyncio.timeout(30),
    ):
        assert len(children(running.pid)) == 2
        url = f"ws://127.0.0.1:{running.port}/v1/realtime?model=m"
        for i in range(6):
            async with connect(url) as client:
                await client.send(f"hello {i}")
                assert await client.recv() == f"hello {i}"

        async def closed_sessions() -> float:
            status, body = await http_get(running.metrics_port, "/metrics")
            assert status == 200
            return samples(body.decode()).get('realtime_proxy_sessions_total{outcome="client_closed"}', 0.0)

        async with asyncio.timeout(10):
            while await closed_sessions() != 6.0:
                await asyncio.sleep(0.05)
        assert (await http_get(running.metrics_port, "/readyz"))[0] == 200
        # SIGTERM: an open session is drained for the grace period, then closed with 1001.
        client = await connect(url)
        await client.send("still here")
        assert await client.recv() == "still here"
        pids = children(running.pid)
        started = time.monotonic()
        running.proc.terminate()
        assert await closed_with(client) == (1001, "proxy shutting down")
        assert await running.proc.wait() == 0
        assert time.monotonic() - started < 5
        await eventually(lambda: not any(Path(f"/proc/{pid}").exists() for pid in pids))


def test_metrics_of_workers_are_summed() -> None:
    worker = (
        "# HELP realtime_proxy_sessions_active Sessions open\n# TYPE realtime_proxy_sessions_active gauge\n"
        "realtime_proxy_sessions_active {n}\n"
        "# HELP realtime_proxy_sessions_total Sessions\n# TYPE realtime_proxy_sessions_total counter\n"
        'realtime_proxy_sessions_total{{outcome="client_closed"}} {n}\n'
        "# HELP d Duration\n# TYPE d histogram\n"
        'd_bucket{{le="1.0"}} {n}\nd_bucket{{le="+Inf"}} {n}\nd_count {n}\nd_sum 0.5\n'
    )
    merged = samples(merge_exposition([worker.format(n=2), worker.format(n=3)]))
    assert merged == {
        "realtime_proxy_sessions_active{}": 5.0,
        'realtime_proxy_sessions_total{outcome="client_closed"}': 5.0,
        'd_bucket{le="1.0"}': 5.0,
        'd_bucket{le="+Inf"}': 5.0,
        "d_count{}": 5.0,
        "d_sum{}": 1.0,
    }


def test_available_cpus_is_at_least_one_and_within_affinity() -> None:
    import os

    assert 1 <= available_cpus() <= len(os.sched_getaffinity(0))

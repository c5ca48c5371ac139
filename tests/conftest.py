"""Shared fixtures: a fake Realtime upstream and the proxy in front of it, both on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import structlog
from prometheus_client.parser import text_string_to_metric_families

from realtime_proxy.edge.health import HealthServer
from realtime_proxy.edge.server import ProxyServer
from realtime_proxy.fake_upstream import FakeUpstream
from realtime_proxy.observe.logs import configure_logging
from realtime_proxy.observe.metrics import Metrics
from realtime_proxy.settings import load_settings

API_KEY = "sk-test-0123456789abcdefSECRET"


@dataclass
class RunningProxy:
    server: ProxyServer
    health: HealthServer
    metrics: Metrics
    fake: FakeUpstream
    logs: io.StringIO

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def base_url(self) -> str:
        """What an SDK's base_url is set to: REST and WebSocket on the one client port."""
        return f"http://127.0.0.1:{self.server.port}/v1"

    @property
    def ws_base(self) -> str:
        return f"ws://127.0.0.1:{self.server.port}/v1"

    @property
    def realtime_url(self) -> str:
        return f"{self.ws_base}/realtime?model=gpt-realtime"

    def log_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.logs.getvalue().splitlines() if line.startswith("{")]

    async def scrape(self) -> dict[str, float]:
        """Every sample from /metrics over real HTTP, keyed `name{label="v",...}`."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.health.port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        raw = await reader.read()
        writer.close()
        text = raw.split(b"\r\n\r\n", 1)[1].decode()
        samples: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}"] = sample.value
        return samples


def sample(samples: dict[str, float], name: str, /, **labels: str) -> float:
    key = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return samples.get(f"{name}{{{key}}}", 0.0)


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream(delta_interval=0.001) as upstream:
        yield upstream


ProxyFactory = Callable[..., Any]


@pytest.fixture
async def make_proxy(fake: FakeUpstream) -> AsyncIterator[ProxyFactory]:
    """Start a proxy (settings overridable) in front of `fake`; all are stopped at teardown."""
    started: list[RunningProxy] = []

    async def start(
        upstream_url: str | None = None,
        extra_rules: tuple[Any, ...] = (),
        tracing: Any = None,
        **overrides: Any,
    ) -> RunningProxy:
        logs = io.StringIO()
        configure_logging(log_format="json", level=overrides.pop("log_level", "debug"), stream=logs)
        flags = {
            "host": "127.0.0.1",
            "port": 0,
            "upstream_url": upstream_url or fake.url,
            "ping_interval": 0,
            "shutdown_grace": 0.5,
            **overrides,
        }
        settings = load_settings(None, environ={}, flags=flags)
        metrics = Metrics()
        server = ProxyServer(
            settings, metrics=metrics, rng=random.Random(7), extra_rules=extra_rules, tracing=tracing
        )
        await server.start()
        health = HealthServer(metrics.registry, lambda: server.ready)
        await health.start("127.0.0.1", 0)
        running = RunningProxy(server, health, metrics, fake, logs)
        started.append(running)
        return running

    yield start
    for running in started:
        await running.server.shutdown(grace=0)
        await running.health.stop()
    structlog.contextvars.clear_contextvars()


@pytest.fixture
async def proxy(make_proxy: ProxyFactory) -> RunningProxy:
    return await make_proxy()


@contextlib.asynccontextmanager
async def bounded(seconds: float = 10) -> AsyncIterator[None]:
    async with asyncio.timeout(seconds):
        yield

"""One proxy process: alone (`--workers 1`), or one worker of a supervisor (`link` set: its listening
socket, readiness pipe and shared limits come from the supervisor)."""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
from typing import Any

from realtime_proxy import __version__
from realtime_proxy.commands.worker_link import WorkerLink
from realtime_proxy.edge.shared_limits import LocalSlots, SessionSlots, SharedSlots, Zone
from realtime_proxy.observe.logs import get_logger
from realtime_proxy.settings import Settings


def server_ssl(settings: Settings) -> ssl.SSLContext | None:
    if not settings.tls_cert:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context


async def serve(settings: Settings, link: WorkerLink | None) -> int:
    from realtime_proxy.edge.health import HealthServer
    from realtime_proxy.edge.server import ProxyServer
    from realtime_proxy.observe.metrics import Metrics
    from realtime_proxy.observe.tracing import tracing_from_environment

    log = get_logger()
    fake: Any = None
    if settings.fake_upstream:
        from realtime_proxy.fake_upstream import FakeUpstream

        fake = FakeUpstream(host="127.0.0.1", port=0, response_delay=settings.fake_upstream_latency)
        fake.drop_after_responses = settings.fake_upstream_drop_after
        fake.session_max_seconds = settings.fake_upstream_session_seconds
        fake.fail_next_handshakes(settings.fake_upstream_fail_handshakes, 503, retry_after=0)
        fake.fail_next_in_band(settings.fake_upstream_fail_in_band)
        await fake.start()
        settings = settings.model_copy(update={"upstream_url": fake.url})

    metrics = Metrics(models=settings.prices, live_models=settings.live_prices)
    tracing = tracing_from_environment(os.environ)  # None unless OTEL_EXPORTER_OTLP_*ENDPOINT is set
    slots: SessionSlots = LocalSlots(settings.max_sessions)
    if link is not None:  # max_sessions is the whole proxy's: counted in the supervisor's zone
        slots = SharedSlots(Zone(link.zone_fd, link.zone_capacity), link.zone_slot, settings.max_sessions)
    server = ProxyServer(settings, metrics=metrics, tracing=tracing, slots=slots)
    await server.start(server_ssl(settings), sock=link.listening_socket() if link else None)
    health = HealthServer(metrics.registry, lambda: server.ready)
    await health.start(settings.metrics_host, settings.metrics_port)
    # Handlers before saying ready: a supervisor may send SIGTERM as soon as it knows,
    # and the default action would kill the process without a graceful shutdown (exit -15).
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if link is None:  # alone, there are no workers to restart: SIGHUP is logged and ignored
        loop.add_signal_handler(signal.SIGHUP, lambda: log.info("sighup_ignored", reason="no workers"))
    fields: dict[str, Any] = {
        "host": settings.host,
        "port": server.port,
        "metrics_port": health.port,
        "upstream": settings.upstream_url.split("://", 1)[-1].split("/", 1)[0],
        "fake_upstream": bool(fake),
        "tls": bool(settings.tls_cert),
        "rules_mode": "observe" if settings.rules_observe_only else "repair",
        "orchestration_mode": "observe"
        if settings.orchestration_observe_only and settings.orchestration.mode != "off"
        else settings.orchestration.mode,
        "version": __version__,
        "event_loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
    }
    if link is None:
        log.info("proxy_listening", **fields)
    else:  # the supervisor says proxy_listening once every worker is ready
        log.info("worker_started", pid=os.getpid(), **fields)
        link.report_ready(health.port)
    await stop.wait()
    log.info("shutdown_started", sessions=len(server.relays), grace_s=settings.shutdown_grace)
    await server.shutdown()
    if link is not None:
        from prometheus_client import generate_latest

        link.report_final(generate_latest(metrics.registry))
    await health.stop()
    if tracing is not None:
        await asyncio.to_thread(tracing.shutdown)  # flush the last spans (blocking export)
    if fake is not None:
        await fake.stop()
    log.info("shutdown_complete")
    return 0

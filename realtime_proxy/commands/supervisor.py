"""A supervisor like nginx's master, over N worker processes.

The supervisor claims the client port once (refused if anything serves it), binds one SO_REUSEPORT
listening socket per worker (the kernel spreads connections among this supervisor's sockets only)
and the metrics port, all before the first worker starts, so a taken port starts nothing. Workers
inherit their socket, a readiness pipe and the shared limits zone (`worker_link`). It respawns a
worker that dies (backoff, counted), restarts them all gracefully on SIGHUP, stops them on
SIGTERM/SIGINT, and serves /metrics summed over them plus its own series.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import signal
import socket
import time

from prometheus_client import generate_latest

from realtime_proxy.commands.serve import server_ssl
from realtime_proxy.commands.worker_link import claim_port, worker_socket
from realtime_proxy.commands.worker_proc import WorkerProc, http_get, spawn, stop_all
from realtime_proxy.edge.shared_limits import Zone
from realtime_proxy.observe.logs import get_logger
from realtime_proxy.observe.metrics import SupervisorMetrics
from realtime_proxy.observe.metrics_merge import merge_exposition
from realtime_proxy.settings import Settings

STARTUP_TIMEOUT = 30.0
STABLE_AFTER = 10.0  # a worker that served this long before dying respawns without backoff
BACKOFF_BASE, BACKOFF_CAP = 0.1, 10.0
log = get_logger("proxy.workers")


def backoff(failures: int) -> float:
    """Delay before respawning after `failures` quick deaths in a row: 0.1 s, 0.2 s, ... 10 s."""
    return float(min(BACKOFF_CAP, BACKOFF_BASE * 2 ** min(failures, 20)))


class Supervisor:
    def __init__(self, settings: Settings, count: int, argv: list[str]) -> None:
        self.settings, self.count, self.argv = settings, count, argv
        self.metrics = SupervisorMetrics()
        self.zone = Zone.create(max(16, 4 * count))  # room for a reload's old and new workers
        self.free_slots = list(range(self.zone.capacity))
        self.current: dict[int, WorkerProc] = {}  # index -> the worker serving it
        self.running: set[WorkerProc] = set()  # every live child, whatever its role: none is orphaned
        self.sockets: dict[int, socket.socket] = {}
        self.failures: dict[int, int] = {}
        self.respawning: dict[int, asyncio.Task[None]] = {}
        self.reloading: asyncio.Task[None] | None = None
        self.stop_requested = asyncio.Event()
        self.stopping = False
        self.anchor: socket.socket | None = None
        self.port = 0
        self.tasks: set[asyncio.Future[None]] = set()
        self.retired = ""  # counters of workers that exited, still part of every sum
        self.floor: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}  # what was exposed

    # -- run ----------------------------------------------------------------------------------

    async def run(self) -> int:
        from realtime_proxy import __version__
        from realtime_proxy.edge.health import HealthServer

        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._request_stop)
        loop.add_signal_handler(signal.SIGHUP, self._on_hup)
        s = self.settings
        health = HealthServer(None, self.is_ready, scrape=self.scrape)
        try:
            server_ssl(s)  # a bad certificate or key fails here, before any worker starts
            self.anchor = claim_port(s.host, s.port)
            self.port = self.anchor.getsockname()[1]
            try:  # before any worker: a taken metrics port starts none
                await health.start(s.metrics_host, s.metrics_port)
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                raise OSError(
                    exc.errno, f"metrics port {s.metrics_port} on {s.metrics_host} is already in use"
                ) from None
            if not await self._start():
                return 0  # SIGTERM/SIGINT before every worker was ready
            log.info(
                "proxy_listening", host=s.host, port=self.port, metrics_port=health.port,
                workers=self.count, pids=[w.pid for w in self.current.values()], version=__version__,
            )  # fmt: skip
            await self.stop_requested.wait()
            log.info("shutdown_started", workers=self.count, grace_s=s.shutdown_grace)
            await self._shutdown(s.shutdown_grace + 5.0)
            log.info("shutdown_complete")
            return 0
        finally:
            await self._shutdown(5.0)  # after a failed start or an error: every worker stops
            await health.stop()
            self.zone.close()
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(signum)
            if self.anchor is not None:
                self.anchor.close()

    def _request_stop(self) -> None:
        self.stopping = True  # from now on a worker's exit is expected: no respawn, /readyz 503
        self.stop_requested.set()

    async def _start(self) -> bool:
        """Spawn every worker and wait for each to report ready; False if stopped meanwhile."""
        workers = [await self._spawn(index) for index in range(1, self.count + 1)]
        self.current = {w.index: w for w in workers}
        ready = asyncio.ensure_future(asyncio.gather(*(w.wait_ready(STARTUP_TIMEOUT) for w in workers)))
        stop = asyncio.ensure_future(self.stop_requested.wait())
        await asyncio.wait([ready, stop], return_when=asyncio.FIRST_COMPLETED)  # type: ignore[type-var]
        stop.cancel()
        if not ready.done():
            ready.cancel()
            return False
        for worker, ok in zip(workers, ready.result(), strict=True):
            if not ok or worker.exited.done():
                raise RuntimeError(f"worker {worker.index} {await self._failure(worker)}")
        return True

    async def _failure(self, worker: WorkerProc) -> str:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1):
                await worker.exited
        if worker.proc.returncode is None:
            return f"was not ready after {STARTUP_TIMEOUT:g} s"
        return f"exited with code {worker.proc.returncode} before it was ready"

    async def _shutdown(self, patience: float) -> None:
        self.stopping = True
        for task in [*self.respawning.values(), self.reloading]:
            if task is not None:
                task.cancel()
        for sock in self.sockets.values():
            sock.close()  # the workers' copies stop with them: no connection waits on a dead socket
        self.sockets.clear()
        await stop_all(list(self.running), patience)

    # -- workers ------------------------------------------------------------------------------

    async def _spawn(self, index: int) -> WorkerProc:
        assert self.anchor is not None
        if index not in self.sockets:
            self.sockets[index] = worker_socket(self.anchor)
        if not self.free_slots:
            raise RuntimeError("no free slot in the limits zone (too many workers still draining)")
        slot = self.free_slots.pop(0)
        try:
            worker = await spawn(index, self.argv, self.sockets[index], self.zone, slot, self.port)
        except BaseException:
            self.free_slots.append(slot)
            raise
        self.running.add(worker)
        worker.exited.add_done_callback(lambda _f: self._exited(worker))
        return worker

    def _exited(self, worker: WorkerProc) -> None:
        self.running.discard(worker)
        self.zone.clear(worker.slot)  # its sessions died with it: their slots are free again
        self.free_slots.append(worker.slot)
        if worker.ready:
            task = asyncio.ensure_future(self._retire(worker))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            self._died(worker)

    async def _retire(self, worker: WorkerProc) -> None:
        """Its counters stay in the sum (a replaced worker is no counter reset for Prometheus)."""
        text = await worker.last_exposition()
        with contextlib.suppress(ValueError):
            self.retired = merge_exposition([self.retired, text], cumulative_only=True)

    def _died(self, worker: WorkerProc) -> None:
        """A worker that had served is gone: respawn it unless it was meant to stop."""
        if worker.handled or self.stopping or self.current.get(worker.index) is not worker:
            return  # stopping, retired by a reload, or replaced
        worker.handled = True
        del self.current[worker.index]
        with contextlib.suppress(KeyError):  # its backlog goes; the kernel sends new connections to
            self.sockets.pop(worker.index).close()  # the live workers until a new socket is bound
        quick = time.monotonic() - worker.started < STABLE_AFTER
        failures = self.failures[worker.index] = self.failures.get(worker.index, 0) + 1 if quick else 0
        delay = backoff(failures)
        code = worker.proc.returncode
        log.error("worker_exited", worker=worker.index, pid=worker.pid, code=code, respawn_in_s=delay)
        self.respawning[worker.index] = asyncio.ensure_future(self._respawn(worker.index, delay))

    async def _respawn(self, index: int, delay: float) -> None:
        try:
            while not self.stopping and index not in self.current:
                await asyncio.sleep(delay)
                worker = await self._spawn(index)
                self.metrics.worker_restarts_total.inc()
                if await worker.wait_ready(STARTUP_TIMEOUT) and not worker.exited.done():
                    self.current[index] = worker
                    log.info("worker_respawned", worker=index, pid=worker.pid)
                    return
                reason = await self._failure(worker)
                worker.signal(signal.SIGKILL)
                failures = self.failures[index] = self.failures.get(index, 0) + 1
                delay = backoff(failures)
                with contextlib.suppress(KeyError):  # no socket waits on a worker that is not there
                    self.sockets.pop(index).close()
                log.error("worker_start_failed", worker=index, reason=reason, retry_in_s=delay)
        finally:
            self.respawning.pop(index, None)

    # -- SIGHUP: graceful restart ---------------------------------------------------------------

    def _on_hup(self) -> None:
        if self.stopping or (self.reloading is not None and not self.reloading.done()):
            log.warning("reload_ignored", reason="stopping" if self.stopping else "a reload is under way")
            return
        self.reloading = asyncio.ensure_future(self._reload())

    async def _reload(self) -> None:
        """New workers (the config file read anew) beside the old; once all are ready the old ones
        stop accepting and drain for the grace period. If any new one fails, the old ones stay."""
        log.info("reload_started", workers=self.count)
        fresh: list[WorkerProc] = []
        try:
            for index in sorted(self.current):
                fresh.append(await self._spawn(index))
            results = await asyncio.gather(*(w.wait_ready(STARTUP_TIMEOUT) for w in fresh))
            failed = [w for w, ok in zip(fresh, results, strict=True) if not ok or w.exited.done()]
            reason = f"worker {failed[0].index} {await self._failure(failed[0])}" if failed else ""
        except (OSError, RuntimeError) as exc:
            failed, reason = fresh, str(exc)
        if failed or self.stopping:
            await stop_all(fresh, 5.0)
            self.metrics.reloads_total.labels("failed").inc()
            log.error("reload_failed", reason=reason or "stopping", workers_kept=len(self.current))
            return
        for worker in fresh:
            old = self.current.get(worker.index)
            self.current[worker.index] = worker
            if old is not None:
                old.signal(signal.SIGTERM)  # stops accepting now, drains its sessions for the grace period
        self.metrics.reloads_total.labels("ok").inc()
        log.info("workers_reloaded", workers=self.count, pids=[w.pid for w in fresh])

    # -- health -------------------------------------------------------------------------------

    async def is_ready(self) -> bool:
        workers = [self.current.get(index) for index in range(1, self.count + 1)]
        if self.stopping or any(w is None or w.exited.done() for w in workers):
            return False
        answers = await asyncio.gather(
            *(http_get(w.metrics_port, "/readyz") for w in workers if w is not None), return_exceptions=True
        )
        return all(a == "ready\n" for a in answers)

    async def scrape(self) -> bytes:
        """Every live worker's /metrics (draining ones too), summed, with the supervisor's own."""
        workers = [w for w in self.running if w.ready]
        self.metrics.workers.set(sum(1 for w in self.current.values() if w.ready and not w.exited.done()))
        texts = await asyncio.gather(
            *(http_get(w.metrics_port, "/metrics") for w in workers), return_exceptions=True
        )
        live = []
        for worker, text in zip(workers, texts, strict=True):
            if isinstance(text, str) and worker in self.running:  # one that exited meanwhile is in retired
                worker.last_scrape = text
                live.append(text)
        own = generate_latest(self.metrics.registry).decode()
        return merge_exposition([*live, self.retired, own], floor=self.floor).encode()

"""Admission of plain HTTP requests to the upstream: at most `http.max_concurrent_requests` at
once (per worker), the rest queued for up to `http.queue_timeout` seconds, then refused with 503
and Retry-After.

A bound in front of whatever client does the upstream request (edge/http/client.py; it was
written for httpx): httpcore's pool costs grow quadratically once requests queue past its
connection limit, and a burst of 500 then burnt 30 ms of CPU per request and starved every
WebSocket session on the same event loop (round trips of 8.7 s). Waiting here costs a deque entry."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from realtime_proxy.observe.metrics import Metrics

RETRY_AFTER_SECONDS = 1


class QueueTimeout(Exception):
    """No upstream slot came free within the queue timeout."""


class UpstreamSlots:
    def __init__(self, limit: int, queue_timeout: float, metrics: Metrics) -> None:
        self._slots = asyncio.Semaphore(limit)
        self.queue_timeout = queue_timeout
        admissions = metrics.http_admissions_total
        self._immediate, self._queued, self._rejected = (
            admissions.labels(result) for result in ("immediate", "queued", "rejected")
        )

    async def acquire(self) -> None:
        """One slot for the upstream request's lifetime (its response streamed included); the
        caller must `release` it. A free slot costs no suspension and no timer."""
        if not self._slots.locked():
            await self._slots.acquire()  # free: no suspension
            self._immediate.inc()
            return
        try:
            async with asyncio.timeout(self.queue_timeout):
                await self._slots.acquire()
        except TimeoutError:
            self._rejected.inc()
            raise QueueTimeout from None
        self._queued.inc()

    def release(self) -> None:
        self._slots.release()

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """`acquire` ... `release` as a context manager."""
        await self.acquire()
        try:
            yield
        finally:
            self.release()

"""The Exchange's back-pressure and limits, against a recording wire (no sockets)."""

from __future__ import annotations

import asyncio

import pytest

from realtime_proxy.edge.http.exchange import (
    BODY_HIGH_WATER,
    BodyTimeout,
    BodyTooLarge,
    Exchange,
    RequestHead,
)


class RecordingWire:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.closing = False

    def continue_(self) -> None:
        self.calls.append("continue")

    def pause_reading(self) -> None:
        self.calls.append("pause")

    def resume_reading(self) -> None:
        self.calls.append("resume")

    def start_response(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.calls.append(f"start {status} {dict(headers).get(b'connection', b'').decode()}".strip())

    def write_body(self, data: bytes) -> None:
        self.calls.append(f"data {len(data)}")

    def end_response(self) -> None:
        self.calls.append("end")

    async def writable(self) -> None:
        return None


def post(length: int | None = None) -> RequestHead:
    headers = [("content-length", str(length))] if length is not None else [("transfer-encoding", "chunked")]
    return RequestHead("POST", "/v1/files", headers, has_body=True)


async def test_reading_pauses_above_high_water_and_resumes_once_drained() -> None:
    wire = RecordingWire()
    exchange = Exchange(post(), wire, idle_timeout=1)
    chunk = b"a" * (BODY_HIGH_WATER // 2)
    for _ in range(3):
        exchange.feed(chunk)
    exchange.end_of_body()
    assert wire.calls == ["pause"]
    received = [len(c) async for c in exchange.body()]
    assert received == [len(chunk)] * 3
    assert wire.calls == ["pause", "continue", "resume"]


async def test_stalled_body_times_out() -> None:
    exchange = Exchange(post(10), RecordingWire(), idle_timeout=0.05)
    exchange.feed(b"12345")
    assert await exchange.receive() == b"12345"
    with pytest.raises(BodyTimeout):
        async with asyncio.timeout(5):
            await exchange.receive()
    assert exchange.stalled


async def test_declared_and_streamed_bodies_over_the_limit() -> None:
    with pytest.raises(BodyTooLarge):
        await Exchange(post(2048), RecordingWire(), idle_timeout=1).read_all(1024)
    exchange = Exchange(post(), RecordingWire(), idle_timeout=1)
    exchange.feed(b"x" * 1000)
    exchange.feed(b"x" * 1000)
    with pytest.raises(BodyTooLarge):
        async with asyncio.timeout(5):
            await exchange.read_all(1024)


async def test_early_answer_asks_the_connection_to_close() -> None:
    wire = RecordingWire()
    exchange = Exchange(post(100), wire, idle_timeout=1)
    await exchange.respond(413, b"{}")
    assert wire.calls == ["start 413 close", "data 2", "end"]
    done = Exchange(RequestHead("GET", "/", [], has_body=False), wire := RecordingWire(), idle_timeout=1)
    await done.respond(200, b"ok")
    assert wire.calls == ["start 200", "data 2", "end"]

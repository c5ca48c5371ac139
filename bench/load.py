"""Client load generator, run in its own process(es) (multiprocessing, spawn).

Protocol with the orchestrator over a Pipe: the worker opens its sessions and sends
`{"ready": ...}`; then it receives either `("go", t0)` (run the scenario with monotonic start time t0,
send back the results, then wait for "close") or "close" (idle scenario: just close the sessions).

Timing rides in `event_id`: appends are `{"type":"input_audio_buffer.append","event_id":"b_<seq>_<t_ns>",
"audio":"..."}`; burst events are `{"type":"input_audio_buffer.clear","event_id":"c_<seq>_<t_ns>"}`.
The upstream copies the event_id into its reply, so the client computes the round trip.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import random
import time
from array import array
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.bare_relay import WS_SETTINGS, run_loop

DELTA_HEAD = '{"type":"response.output_audio.delta","event_id":"b_'
CLEARED_HEAD = '{"type":"input_audio_buffer.cleared","event_id":"c_'
DRAIN_SECONDS = 5.0


@dataclass
class LoadSpec:
    url: str
    scenario: str  # "voice" | "burst" | "idle"
    sessions: int
    first_index: int = 0  # of this worker's sessions among all workers (start phase stagger)
    total_sessions: int = 1
    duration: float = 10.0
    rate: float = 50.0
    burst_events: int = 0
    window: int = 256  # burst: events in flight
    use_uvloop: bool = True


@dataclass
class SessionStats:
    sent: int = 0
    received: int = 0
    out_of_order: int = 0
    duplicated: int = 0
    corrupt: int = 0
    achieved_rate: float = 0.0
    max_late_ms: float = 0.0
    growth: float = 1.0  # p50 RTT of the last 20% of frames / p50 of the first 20%
    rtts: array[int] = field(default_factory=lambda: array("q"))
    sending_done: bool = False
    all_back: asyncio.Event = field(default_factory=asyncio.Event)

    def __getstate__(self) -> dict[str, Any]:  # sent to the orchestrator: the Event stays here
        return {k: v for k, v in self.__dict__.items() if k != "all_back"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, all_back=asyncio.Event())


def worker(pipe: Pipe, spec: LoadSpec) -> None:
    """Process entry point."""
    run_loop(_worker(pipe, spec), use_uvloop=spec.use_uvloop)


async def _worker(pipe: Pipe, spec: LoadSpec) -> None:
    loop = asyncio.get_running_loop()
    sessions, errors = await _open_sessions(spec)
    pipe.send({"ready": True, "connected": len(sessions), "connect_errors": errors})
    try:
        command = await loop.run_in_executor(None, pipe.recv)
        if isinstance(command, tuple) and command[0] == "go":
            started = time.monotonic()
            stats = await _run(spec, sessions, command[1])
            pipe.send({"stats": stats, "elapsed": time.monotonic() - started})
            await loop.run_in_executor(None, pipe.recv)  # "close"
    finally:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(15):
                await asyncio.gather(*(ws.close() for ws in sessions), return_exceptions=True)


async def _open_sessions(spec: LoadSpec) -> tuple[list[ClientConnection], list[str]]:
    gate = asyncio.Semaphore(32)
    errors: list[str] = []

    async def open_one() -> ClientConnection | None:
        async with gate:
            try:
                return await connect(
                    spec.url,
                    additional_headers={"Authorization": "Bearer sk-bench"},
                    proxy=None,
                    open_timeout=30,
                    **WS_SETTINGS,
                )
            except Exception as exc:  # reported, not raised: the report shows failed connects
                errors.append(f"{type(exc).__name__}: {exc}"[:200])
                return None

    opened = await asyncio.gather(*(open_one() for _ in range(spec.sessions)))
    return [ws for ws in opened if ws is not None], errors[:5] + (
        [f"... {len(errors)} total"] * (len(errors) > 5)
    )


async def _run(spec: LoadSpec, sessions: list[ClientConnection], t0: float) -> list[SessionStats]:
    if spec.scenario == "voice":
        jobs = [
            _voice(ws, t0 + ((spec.first_index + i) / spec.total_sessions) / spec.rate, spec)
            for i, ws in enumerate(sessions)
        ]
    else:
        jobs = [_burst(ws, t0, spec) for ws in sessions]
    return list(await asyncio.gather(*jobs))


async def _sleep_until(deadline: float) -> None:
    delay = deadline - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


def _parse_id(message: str, head: str) -> tuple[int, int]:
    """(seq, t_ns) from a reply whose event_id is `<x>_<seq>_<t_ns>` right after `head`."""
    start = len(head)
    end = message.index('"', start)
    seq, t_ns = message[start:end].split("_")
    return int(seq), int(t_ns)


async def _voice(ws: ClientConnection, start: float, spec: LoadSpec) -> SessionStats:
    stats = SessionStats()
    audio = base64.b64encode(random.Random(start).randbytes(960)).decode()  # 20 ms PCM16 24 kHz
    tail = '","audio":"' + audio + '"}'
    expected_tail = '"delta":"' + audio + '"}'
    total = int(spec.duration * spec.rate)
    period = 1.0 / spec.rate
    receiver = asyncio.create_task(_receive(ws, DELTA_HEAD, stats, expected_tail, None))
    await _sleep_until(start)
    hard_stop = start + spec.duration + max(5.0, spec.duration)
    send = ws.send
    last = start
    try:
        for seq in range(total):
            deadline = start + seq * period
            await _sleep_until(deadline)
            now = time.monotonic()
            stats.max_late_ms = max(stats.max_late_ms, (now - deadline) * 1000)
            if now > hard_stop:
                break
            await send(
                f'{{"type":"input_audio_buffer.append","event_id":"b_{seq}_{time.monotonic_ns()}{tail}'
            )
            stats.sent += 1
        last = time.monotonic()
    except ConnectionClosed:
        pass
    stats.achieved_rate = stats.sent / max(last - start + period, 1e-9)
    await _drain(receiver, stats)
    n = len(stats.rtts) // 5
    if n >= 5:
        first, final = sorted(stats.rtts[:n]), sorted(stats.rtts[-n:])
        if final[n // 2] > 20_000_000:  # growth only counts once latency is material (> 20 ms)
            stats.growth = final[n // 2] / max(first[n // 2], 1)
    return stats


async def _burst(ws: ClientConnection, start: float, spec: LoadSpec) -> SessionStats:
    stats = SessionStats()
    window = asyncio.Semaphore(spec.window)
    receiver = asyncio.create_task(_receive(ws, CLEARED_HEAD, stats, None, window))
    await _sleep_until(start)
    send = ws.send
    began = time.monotonic()
    try:
        for seq in range(spec.burst_events):
            await window.acquire()
            await send(f'{{"type":"input_audio_buffer.clear","event_id":"c_{seq}_{time.monotonic_ns()}"}}')
            stats.sent += 1
    except ConnectionClosed:
        pass
    await _drain(receiver, stats)
    stats.achieved_rate = stats.received / max(time.monotonic() - began, 1e-9)
    return stats


async def _drain(receiver: asyncio.Task[None], stats: SessionStats) -> None:
    """Wait until every sent frame came back (or DRAIN_SECONDS passed), then stop the receiver."""
    stats.sending_done = True
    if stats.received < stats.sent:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(stats.all_back.wait()), DRAIN_SECONDS)
    receiver.cancel()
    with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
        await receiver


async def _receive(
    ws: ClientConnection,
    head: str,
    stats: SessionStats,
    expected_tail: str | None,
    window: asyncio.Semaphore | None,
) -> None:
    expected = 0
    seen: set[int] = set()
    rtts = stats.rtts
    clock = time.monotonic_ns
    with contextlib.suppress(ConnectionClosed):
        async for message in ws:
            if not isinstance(message, str) or not message.startswith(head):
                continue  # session.created etc.
            now = clock()
            seq, t_ns = _parse_id(message, head)
            rtts.append(now - t_ns)
            stats.received += 1
            if seq in seen:
                stats.duplicated += 1
            seen.add(seq)
            if seq != expected:
                stats.out_of_order += 1
            expected = seq + 1
            if expected_tail is not None and not message.endswith(expected_tail):
                stats.corrupt += 1
            if window is not None:
                window.release()
            if stats.sending_done and stats.received >= stats.sent:
                stats.all_back.set()


def split(total: int, workers: int) -> list[tuple[int, int]]:
    """(first_index, count) per worker."""
    base, extra = divmod(total, workers)
    out, first = [], 0
    for i in range(workers):
        count = base + (i < extra)
        out.append((first, count))
        first += count
    return out


def summarise(stats: list[SessionStats], rate: float) -> dict[str, Any]:
    """Aggregate the sessions of all workers."""
    rtts = sorted(x for s in stats for x in s.rtts)

    def pct(p: float) -> float | None:
        return rtts[min(len(rtts) - 1, int(p * len(rtts)))] / 1e6 if rtts else None

    # Fell behind: under 95% of the target rate, latency still growing at the end (last 20% of
    # frames 3x slower than the first 20%), or replies not back within the drain timeout.
    behind = [
        s for s in stats if (rate and s.achieved_rate < 0.95 * rate) or s.growth > 3.0 or s.received < s.sent
    ]
    return {
        "sessions": len(stats),
        "sent": sum(s.sent for s in stats),
        "received": sum(s.received for s in stats),
        "lost": sum(s.sent - (s.received - s.duplicated) for s in stats),
        "out_of_order": sum(s.out_of_order for s in stats),
        "duplicated": sum(s.duplicated for s in stats),
        "corrupt": sum(s.corrupt for s in stats),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": rtts[-1] / 1e6 if rtts else None,
        "min_rate": min((s.achieved_rate for s in stats), default=0.0),
        "max_late_ms": max((s.max_late_ms for s in stats), default=0.0),
        "max_growth": max((s.growth for s in stats), default=1.0),
        "fell_behind": len(behind),
    }

"""Bad input and fuzzing through the real proxy. Malformed JSON, non-object JSON, wrong field types,
unknown event types, huge strings, 10,000-deep nesting and binary frames are forwarded untouched (the
upstream answers them) and the session survives; invalid UTF-8 in a text frame is a protocol error:
websockets fails that leg with 1007 and the proxy mirrors 1007 to the other leg. A hypothesis fuzz sends
>= 10,000 random frames through ONE live session: it survives, frames no rule touched arrive
byte-identical and in order, and the proxy accepts a new session afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import random
import re
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from realtime_proxy.api.events import CLIENT_EVENT_TYPES
from realtime_proxy.edge.server import ProxyServer
from realtime_proxy.fake_upstream import FakeUpstream
from realtime_proxy.observe.logs import configure_logging
from realtime_proxy.settings import load_settings
from tests.conftest import ProxyFactory
from tests.e2e.helpers import EchoUpstream, UpstreamConn, eventually, open_session

DEEP = '{"type":"conversation.item.create","item":' + "[" * 10_000 + "]" * 10_000 + "}"
BAD_INPUTS: list[str | bytes] = [
    '{"type":"response.create",',
    "not json at all",
    "[1,2,3]",
    "42",
    "null",
    '"a string"',
    '{"type":"response.create","response":5}',
    '{"type":"response.create","response":{"tool_choice":{"type":"function"},"tools":"x"}}',
    '{"type":"session.update","session":{"type":"realtime","tools":"x","tool_choice":7,"audio":[]}}',
    '{"type":"session.update","session":null}',
    '{"type":"conversation.item.create","item":"x"}',
    '{"type":"conversation.item.truncate","audio_end_ms":"soon"}',
    '{"type":5}',
    '{"type":"no.such.event","x":1}',
    '{"no_type":true}',
    '{"type":"input_audio_buffer.append","audio":"' + "A" * (4 * 1024 * 1024) + '"}',
    '{"type":"session.update","session":{"type":"realtime","instructions":"' + "é" * 1_000_000 + '"}}',
    DEEP,
    '{"type":"session.update","session":' + '{"a":' * 5_000 + "1" + "}" * 5_000 + "}",
    b"\x00\x01binary\xff",
    b'{"type":"response.create"}',
]


@pytest.fixture
async def echo() -> Iterator[EchoUpstream]:
    async with EchoUpstream(echo=False) as upstream:
        yield upstream


async def test_bad_input_forwarded_untouched(make_proxy: ProxyFactory, echo: EchoUpstream) -> None:
    # Turn-taking off: this upstream never answers, so a second in-band create would be held.
    proxy = await make_proxy(upstream_url=echo.url, orchestration={"mode": "off"})
    async with asyncio.timeout(20), connect(proxy.realtime_url, max_size=None) as client:
        conn = await echo.next_conn()
        for frame in BAD_INPUTS:
            await client.send(frame)
        await client.send("sync")
        while not conn.received or conn.received[-1] != "sync":
            await asyncio.sleep(0.01)
    assert conn.received == [*BAD_INPUTS, "sync"]
    assert not [line for line in proxy.log_lines() if line["event"] == "rule_error"]


async def test_bad_input_session_survives_with_fake(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    proxy = await make_proxy()
    async with asyncio.timeout(20):
        client = await open_session(proxy)
        errors = 0
        for frame in BAD_INPUTS:
            await client.send(frame)
            await client.send('{"type":"input_audio_buffer.clear"}')
            while (event := json.loads(await client.recv()))["type"] != "input_audio_buffer.cleared":
                errors += event["type"] == "error"
        assert errors >= len(BAD_INPUTS) - 3  # the fake answers (nearly) all of them with `error`
        await client.close()
    await eventually(lambda: not proxy.server.relays)
    samples = await proxy.scrape()
    assert samples['realtime_proxy_sessions_total{outcome="client_closed"}'] == 1.0


async def test_invalid_utf8_from_client_closes_1007(make_proxy: ProxyFactory, echo: EchoUpstream) -> None:
    proxy = await make_proxy(upstream_url=echo.url)
    async with asyncio.timeout(10), connect(proxy.realtime_url) as client:
        conn = await echo.next_conn()
        await client.send(b'{"type":"x","s":"\xff\xfe"}', text=True)
        with pytest.raises(ConnectionClosed):
            await client.recv()
        await conn.closed.wait()
    assert client.close_code == 1007 and "invalid" in (client.close_reason or "")
    assert (conn.close_code, conn.close_reason) == (1007, client.close_reason)
    assert conn.received == []  # never forwarded


async def test_invalid_utf8_from_upstream_closes_1007(make_proxy: ProxyFactory, echo: EchoUpstream) -> None:
    proxy = await make_proxy(upstream_url=echo.url)
    async with asyncio.timeout(10), connect(proxy.realtime_url) as client:
        conn = await echo.next_conn()
        await conn.ws.send(b"\xc3\x28", text=True)
        with pytest.raises(ConnectionClosed):
            await client.recv()
        await conn.closed.wait()
    assert client.close_code == 1007 and conn.close_code == 1007


# -- hypothesis: one live session, >= 10,000 frames --------------------------------------------

T = TypeVar("T")
MARK = re.compile(r"~FZ(\d+)~")
MARK_B = re.compile(rb"~FZ(\d+)~")
KNOWN_TYPES = sorted(CLIENT_EVENT_TYPES)
_leaf = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=10)
_json = _leaf | st.lists(_leaf, max_size=3) | st.dictionaries(st.text(max_size=6), _leaf, max_size=2)
_kind = st.sampled_from(["json", "json", "json", "text", "bytes"])
_type = st.sampled_from(KNOWN_TYPES) | st.text(max_size=16)
_keys = st.sampled_from(["session", "response", "item", "audio", "x", "tools", "tool_choice", "event_id"])
_frame_spec = st.tuples(
    _kind, _type, st.dictionaries(_keys, _json, max_size=3), st.text(max_size=30), st.binary(max_size=30)
)
Spec = tuple[str, str, dict[str, Any], str, bytes]


def render(index: int, spec: Spec, variant: bool) -> str | bytes:
    """One frame per spec and variant (hypothesis generation is the slow part: each spec gives two
    frames: event_id first / type first, compact or not, ASCII-escaped or not, text <-> bytes)."""
    kind, event_type, body, text, blob = spec
    mark = f"~FZ{index}~"
    if kind == "bytes":
        return mark.encode() + (blob if not variant else text.encode())
    if kind == "text":
        return mark + (text if not variant else blob.hex()).replace("~FZ", "")
    event = {"event_id": mark, "type": event_type, **body} if not variant else {"type": event_type, **body}
    event["event_id"] = mark
    separators = (",", ":") if variant else (", ", ": ")
    return json.dumps(event, ensure_ascii=variant, separators=separators)


def marker(frame: str | bytes) -> int:
    found = MARK.search(frame) if isinstance(frame, str) else MARK_B.search(frame)
    assert found is not None, frame[:200]
    return int(found.group(1))


class LiveSession:
    """The proxy, a recording upstream and one client session on an event loop in a thread, so that
    hypothesis (synchronous) can push batch after batch through the same session."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.sent: dict[int, str | bytes] = {}
        self.next_index = 0

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 20) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def start(self) -> None:
        self.logs = io.StringIO()
        configure_logging(log_format="json", level="info", stream=self.logs)
        self.synced = asyncio.Event()
        self.upstream = EchoUpstream(behaviour=self._record)
        await self.upstream.__aenter__()
        flags = {"host": "127.0.0.1", "port": 0, "upstream_url": self.upstream.url, "ping_interval": 0}
        self.server = ProxyServer(load_settings(None, environ={}, flags=flags), rng=random.Random(1))
        await self.server.start()
        self.url = f"ws://127.0.0.1:{self.server.port}/v1/realtime?model=gpt-realtime"
        # No keepalive pings: websockets draws their payload from the global `random` in this thread,
        # which hypothesis, generating in the main thread, reports as randomness inside a strategy.
        self.client = await connect(self.url, max_size=None, ping_interval=None)
        self.conn = await self.upstream.next_conn()
        # Refusals come back to the client as `error` events: keep reading them, or the client's
        # full receive queue would stall its close handshake.
        self.to_client: list[str | bytes] = []
        self.reader = asyncio.create_task(self._read_client())

    async def _read_client(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for frame in self.client:
                self.to_client.append(frame)

    async def _record(self, conn: UpstreamConn) -> None:
        async for frame in conn.ws:
            if frame == "~SYNC~":
                self.synced.set()
            else:
                conn.received.append(frame)

    async def send_batch(self, frames: list[str | bytes]) -> None:
        async with asyncio.timeout(15):
            self.synced.clear()
            for frame in frames:
                await self.client.send(frame)
            await self.client.send("~SYNC~")
            await self.synced.wait()

    async def stop(self) -> None:
        await self.client.close()
        await self.reader
        await self.server.shutdown(grace=0)
        await self.upstream.__aexit__()


@pytest.fixture(scope="module")
def live() -> Iterator[LiveSession]:
    session = LiveSession()
    session.run(session.start())
    yield session
    session.run(session.stop())
    session.loop.call_soon_threadsafe(session.loop.stop)
    session.thread.join(5)
    session.loop.close()


@settings(
    max_examples=50,
    deadline=None,
    database=None,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)
@given(specs=st.lists(_frame_spec, min_size=100, max_size=100))
def push_fuzz_batch(live: LiveSession, specs: list[Spec]) -> None:
    frames = []
    for spec in specs:
        for variant in (False, True):
            index = live.next_index = live.next_index + 1
            frames.append(frame := render(index, spec, variant))
            live.sent[index] = frame
    live.run(live.send_batch(frames))


@pytest.fixture(scope="module")
def fuzzed(live: LiveSession) -> LiveSession:
    """The live session after 50 hypothesis batches, pushed once for the module whichever test runs
    first (alone, or in any order)."""
    push_fuzz_batch(live)
    return live


def test_fuzz_one_session(fuzzed: LiveSession) -> None:
    assert len(fuzzed.sent) == 50 * 200
    assert fuzzed.client.state.name == "OPEN"


def test_fuzz_results(fuzzed: LiveSession) -> None:
    """Every fuzzed frame checked, the session alive, a new one accepted."""
    live = fuzzed
    assert len(live.sent) >= 10_000
    touched = {
        line.get("client_event_id")
        for line in map(json.loads, live.logs.getvalue().splitlines())
        if line.get("event") in {"rewrite", "refusal", "rule_error", "compat"}
    }
    received = live.conn.received
    indexes = [marker(frame) for frame in received]
    assert indexes == sorted(indexes) and len(set(indexes)) == len(indexes)  # in order, no duplicates
    by_index = dict(zip(indexes, received, strict=True))
    for index, frame in live.sent.items():
        managed = (
            isinstance(frame, str)
            and frame.startswith("{")
            and (
                f"~FZ{index}~" in touched
                or json.loads(frame)["type"] in {"response.create", "response.cancel"}
            )
        )
        if not managed:
            assert by_index.get(index) == frame, (index, frame[:200])
    assert live.client.state.name == "OPEN"
    # All the proxy itself answered were refusals, as the API's own `error` events.
    answers = [json.loads(frame) for frame in live.to_client]
    assert all(a["type"] == "error" and a["event_id"].startswith("proxy_evt_") for a in answers)
    assert not any('"rule_error"' in line for line in live.logs.getvalue().splitlines())

    async def new_session() -> None:
        async with asyncio.timeout(10), connect(live.url) as other:
            await other.send("still alive")
            await live.upstream.next_conn()

    live.run(new_session())

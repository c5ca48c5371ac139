"""The upstream leg's response parsing (edge/http/leg.py, llhttp), fed bytes directly: what comes out
of each response shape, whole and split at every byte, and whether the connection may be reused."""

from __future__ import annotations

import asyncio

import pytest

from realtime_proxy.edge.http.errors import UpstreamError
from realtime_proxy.edge.http.leg import END, Head, Leg, chunk, request_head


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.aborted = False
        self.paused = 0
        self.resumed = 0

    def abort(self) -> None:
        self.aborted = True

    def pause_reading(self) -> None:
        self.paused += 1

    def resume_reading(self) -> None:
        self.resumed += 1


def leg_for(method: str = "GET") -> tuple[Leg, FakeTransport]:
    leg, transport = Leg(), FakeTransport()
    leg.connection_made(transport)
    leg.begin(head_only=method == "HEAD")
    leg.sent = True
    return leg, transport


def feed(leg: Leg, data: bytes, split: bool = False) -> None:
    for piece in [data[i : i + 1] for i in range(len(data))] if split else [data]:
        leg.data_received(piece)


def parsed(leg: Leg) -> tuple[int, list[tuple[bytes, bytes]], bytes, bool]:
    """(status, headers, body, ended) from the queued events, which must be Head, bytes..., [END]."""
    events = list(leg.events)
    head = events[0]
    assert isinstance(head, Head)
    rest = events[1:]
    ended = bool(rest) and rest[-1] is END
    body = rest[:-1] if ended else rest
    assert all(type(b) is bytes and b for b in body)
    return head.status, head.headers, b"".join(body), ended  # type: ignore[arg-type]


CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: v \t\r\n\r\n"
    b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n"
)
LENGTH = b"HTTP/1.1 201 Created\r\nContent-Length: 11\r\nX-Request-Id: req_1\r\n\r\nhello world"


@pytest.mark.parametrize("split", [False, True])
def test_a_chunked_body_whole_or_split_at_every_byte(split: bool) -> None:
    leg, transport = leg_for()
    feed(leg, CHUNKED, split)
    status, headers, body, ended = parsed(leg)
    assert (status, body, ended) == (200, b"hello world", True)
    assert headers == [(b"Transfer-Encoding", b"chunked"), (b"X-A", b"v")]  # as written, no trailing blanks
    assert leg.reusable() and not transport.aborted and leg.failure is None


@pytest.mark.parametrize("split", [False, True])
def test_a_length_body_whole_or_split_at_every_byte(split: bool) -> None:
    leg, _ = leg_for()
    feed(leg, LENGTH, split)
    headers = [(b"Content-Length", b"11"), (b"X-Request-Id", b"req_1")]
    assert parsed(leg) == (201, headers, b"hello world", True)
    assert leg.reusable()


def test_a_body_with_neither_length_nor_chunks_is_read_to_the_close() -> None:
    leg, _ = leg_for()
    feed(leg, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of ")
    feed(leg, b"it")
    assert parsed(leg)[2:] == (b"all of it", False)
    leg.eof_received()
    leg.connection_lost(None)
    assert parsed(leg)[2:] == (b"all of it", True)
    assert not leg.reusable()


def test_a_framed_body_cut_by_the_close_does_not_end() -> None:
    for response in (LENGTH[:-3], CHUNKED[:-7]):
        leg, _ = leg_for()
        feed(leg, response)
        leg.eof_received()
        leg.connection_lost(None)
        assert parsed(leg)[3] is False
        assert isinstance(leg.failure, UpstreamError) and not leg.reusable()


@pytest.mark.parametrize("split", [False, True])
def test_the_answer_to_head_has_no_body_whatever_its_length(split: bool) -> None:
    leg, transport = leg_for("HEAD")
    feed(leg, b"HTTP/1.1 404 Not Found\r\nContent-Length: 120\r\n\r\n", split)
    assert parsed(leg) == (404, [(b"Content-Length", b"120")], b"", True)
    assert leg.reusable() and not transport.aborted


def test_bytes_after_the_answer_to_head_stop_its_reuse() -> None:
    leg, _ = leg_for("HEAD")
    feed(leg, b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc")
    assert parsed(leg)[2:] == (b"", True)
    assert not leg.reusable()


@pytest.mark.parametrize("status", [204, 304])
def test_204_and_304_have_no_body(status: int) -> None:
    leg, _ = leg_for()
    feed(leg, b"HTTP/1.1 %d X\r\nContent-Length: 7\r\n\r\n" % status)
    assert parsed(leg) == (status, [(b"Content-Length", b"7")], b"", True)
    assert leg.reusable()


@pytest.mark.parametrize("split", [False, True])
def test_1xx_answers_are_skipped(split: bool) -> None:
    leg, _ = leg_for()
    feed(leg, b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + LENGTH, split)
    assert parsed(leg)[0::2] == (201, b"hello world")
    assert leg.reusable()


@pytest.mark.parametrize(
    "response",
    [
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-A: a\x01b\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Name: a\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-2\r\nab\r\n",
        b"HTTP/1.1 200 OK\r\nX-A: " + b"a" * 17_000,  # a head that never ends
    ],
)
def test_an_invalid_response_breaks_the_exchange(response: bytes) -> None:
    leg, transport = leg_for()
    feed(leg, response)
    assert isinstance(leg.failure, UpstreamError) and "HTTP/1.1" in str(leg.failure)
    assert transport.aborted and not leg.reusable()
    assert not any(event is END for event in leg.events)


@pytest.mark.parametrize(
    ("response", "reusable"),
    [
        (LENGTH, True),
        (LENGTH.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"), False),
        (LENGTH.replace(b"\r\n\r\n", b"\r\nConnection: Keep-Alive, Close\r\n\r\n"), False),
        (LENGTH.replace(b"HTTP/1.1", b"HTTP/1.0"), False),
    ],
)
def test_keep_alive_or_close(response: bytes, reusable: bool) -> None:
    leg, _ = leg_for()
    feed(leg, response)
    assert parsed(leg)[2:] == (b"hello world", True)
    assert leg.reusable() is reusable


@pytest.mark.parametrize("later", [False, True])
def test_bytes_after_a_complete_response_close_the_connection(later: bool) -> None:
    leg, transport = leg_for()
    feed(leg, LENGTH if later else LENGTH + b"HTTP/1.1 200 OK\r\n")
    if later:
        feed(leg, b"HTTP/1.1 200 OK\r\n")
    assert parsed(leg)[2:] == (b"hello world", True)  # the response itself is whole
    assert transport.aborted and not leg.reusable()


def test_a_response_not_fully_asked_for_is_not_reused() -> None:
    leg, _ = leg_for()
    leg.sent = False  # answered before the request body was all written
    feed(leg, LENGTH)
    assert parsed(leg)[3] and not leg.reusable()


def test_data_on_an_idle_connection_breaks_it() -> None:
    leg, transport = Leg(), FakeTransport()
    leg.connection_made(transport)
    leg.data_received(b"HTTP/1.1 200 OK\r\n")
    assert isinstance(leg.failure, UpstreamError) and transport.aborted


def test_reading_pauses_past_the_high_water_mark_and_resumes_when_taken() -> None:
    leg, transport = leg_for()
    feed(leg, b"HTTP/1.1 200 OK\r\nContent-Length: 400000\r\n\r\n")
    leg.take()
    for _ in range(5):
        feed(leg, b"x" * 65536)
    assert transport.paused == 1 and leg.queued == 5 * 65536
    while leg.queued >= 64 * 1024:
        leg.take()
    assert transport.resumed == 1


def test_the_request_head_and_chunks() -> None:
    head = request_head("POST", "/v1/x?a=1", [("host", "h:1"), ("x-v", "caf\xe9 a\tb")])
    assert head == b"POST /v1/x?a=1 HTTP/1.1\r\nhost: h:1\r\nx-v: caf\xe9 a\tb\r\n\r\n"
    assert chunk(b"hello world, and more") == b"15\r\nhello world, and more\r\n"
    bad = [("x-a", "a\r\nx-b: c"), ("x-a", "a\nb"), ("x a", "v"), ("x-a", " v"), ("x-a", "v\x00")]
    for name, value in bad:
        with pytest.raises(UpstreamError, match="not valid"):
            request_head("GET", "/", [(name, value)])

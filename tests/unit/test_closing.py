"""closing: the close code and reason the other side gets, for every way a leg can end. Pure."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.frames import Close

from realtime_proxy.core.closing import (
    MAX_REASON_BYTES,
    LegClosed,
    clip_reason,
    close_for_peer,
    outcome_of,
    sendable,
)


@pytest.mark.parametrize(
    ("leg", "expected"),
    [
        (LegClosed("client", Close(4001, "bye"), None), (4001, "bye")),
        (LegClosed("upstream", Close(1011, "boom"), Close(1011, "boom")), (1011, "boom")),
        (LegClosed("upstream", None, None), (1011, "upstream connection lost")),
        (LegClosed("client", None, None), (1001, "client connection lost")),
        (LegClosed("upstream", Close(1005, ""), None), (None, "")),
        (LegClosed("client", Close(1005, ""), None), (None, "")),
        (
            LegClosed("upstream", None, Close(1011, "keepalive ping timeout")),
            (1011, "keepalive ping timeout"),
        ),
        (LegClosed("client", None, Close(1009, "over size limit")), (1009, "over size limit")),
        (LegClosed("client", None, Close(1007, "invalid start byte")), (1007, "invalid start byte")),
        (LegClosed("upstream", Close(1006, ""), None), (1011, "upstream closed with 1006")),
        (LegClosed("client", Close(1015, "tls"), None), (1011, "tls")),
        (LegClosed("client", Close(2999, ""), None), (1011, "client closed with 2999")),
    ],
)
def test_close_for_peer(leg: LegClosed, expected: tuple[int | None, str]) -> None:
    assert close_for_peer(leg) == expected


def test_outcome() -> None:
    assert outcome_of(LegClosed("client", Close(1000, ""), None)) == "client_closed"
    assert outcome_of(LegClosed("upstream", None, Close(1011, "x"))) == "upstream_lost"
    assert outcome_of(LegClosed("upstream", None, None)) == "upstream_lost"
    assert LegClosed("client", None, None).lost and LegClosed("client", None, None).code is None


def test_sendable() -> None:
    assert all(sendable(c) for c in (1000, 1001, 1007, 1008, 1009, 1011, 1014, 3000, 4000, 4999))
    assert not any(sendable(c) for c in (999, 1004, 1005, 1006, 1015, 1016, 2999, 5000))


def test_clip_reason_drops_a_character_the_byte_limit_would_split() -> None:
    assert clip_reason("é" * 61) == "é" * 61  # 122 bytes: kept
    assert clip_reason("é" * 62) == "é" * 61  # 124 bytes: the 62nd would straddle byte 123
    assert clip_reason("a" + "é" * 62) == "a" + "é" * 61  # 123 bytes exactly
    assert clip_reason("x" * MAX_REASON_BYTES) == "x" * MAX_REASON_BYTES


@given(st.text(max_size=200))
def test_clip_reason_fits_a_close_frame(reason: str) -> None:
    clipped = clip_reason(reason)
    assert len(clipped.encode()) <= MAX_REASON_BYTES
    assert reason.startswith(clipped)


@given(st.integers(0, 6000), st.text(max_size=200), st.sampled_from(["client", "upstream"]))
def test_peer_close_is_always_sendable(code: int, reason: str, side: str) -> None:
    mirrored, text = close_for_peer(LegClosed(side, Close(code, reason), None))
    if mirrored is None:  # a code-less Close stays code-less
        assert code == 1005 and text == ""
        return
    assert sendable(mirrored) and len(text.encode()) <= MAX_REASON_BYTES
    Close(mirrored, text).serialize()  # websockets accepts it


def test_upstream_failures_close_with_codes_the_sdk_reconnects_on() -> None:
    """Issue 25: every code the proxy sends because the upstream failed is one the `openai` SDK's
    `on_reconnecting` accepts (1014 and 1000 are not)."""
    from openai.types.websocket_reconnection import is_recoverable_close

    from realtime_proxy.core.closing import UPSTREAM_LOST, UPSTREAM_RESTARTING, UPSTREAM_UNAVAILABLE

    upstream_failures = [
        close_for_peer(LegClosed("upstream", None, None))[0],
        close_for_peer(LegClosed("upstream", Close(1006, ""), None))[0],
        close_for_peer(LegClosed("upstream", Close(1015, ""), None))[0],
        close_for_peer(LegClosed("upstream", None, Close(1011, "keepalive ping timeout")))[0],
        UPSTREAM_LOST[0],
        UPSTREAM_UNAVAILABLE[0],
        UPSTREAM_RESTARTING[0],
    ]
    assert all(code is not None and is_recoverable_close(code) for code in upstream_failures)
    assert not is_recoverable_close(1014) and not is_recoverable_close(1000)


def test_protocol_errors_the_proxy_sent_are_their_own_outcome() -> None:
    from websockets.frames import Close

    from realtime_proxy.core.closing import LegClosed, outcome_of

    for code in (1002, 1007, 1009):
        assert outcome_of(LegClosed("client", None, Close(code, "bad"))) == "protocol_error"
    assert outcome_of(LegClosed("client", None, Close(1011, "keepalive ping timeout"))) == "client_lost"

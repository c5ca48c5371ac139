"""Sound audio counts for the guards: the input buffer's upper bound and the audio delivered per item.

Pure, no I/O. A guard may refuse or clamp only on a count that errs on the side of forwarding:
- input: the MOST audio the buffered bytes could be (bytes over the smallest bytes/ms of every
  format in play since the buffer was last known empty, confirmed or sent but not yet confirmed);
  a frame whose type the proxy could not read might have been an append, so it counts as "enough";
- output: the MOST audio each item could have delivered, in the format of the response it belongs
  to (its own `audio.output.format`, else the session's when the response was created)."""

from __future__ import annotations

from typing import Any, Final

# Smallest bytes/ms of any GA format (G.711 at 8 kHz): with an unknown format it turns a
# byte count into an UPPER bound on milliseconds, so guards never block a valid request.
MIN_BYTES_PER_MS: Final = 8.0
# Bytes counted for a frame the proxy could not read (too large to parse, `type` not first): more
# audio than any commit needs, so the guard forwards until the buffer is known empty again.
UNREADABLE_BYTES: Final = 1e12
MAX_PENDING: Final = 16  # unanswered commits/clears/updates remembered; past that: conservative
MAX_TRACKED: Final = 256  # items and responses remembered (truncation targets recent items)
_INF: Final = float("inf")  # one float for every session's starting floor


def bytes_per_ms(fmt: Any) -> float | None:
    """Bytes per millisecond of a GA audio format object, None when unknown.
    G.711 (pcmu/pcma) is 8 kHz, 1 byte a sample; PCM is 16-bit mono at `rate` (24 kHz unless set)."""
    if not isinstance(fmt, dict):
        return None
    kind = fmt.get("type")
    if kind in ("audio/pcmu", "audio/pcma"):
        return 8.0
    if kind == "audio/pcm":
        rate = fmt.get("rate", 24000)
        if isinstance(rate, int | float) and not isinstance(rate, bool) and rate > 0:
            return rate * 2 / 1000
    return None


class InputBuffer:
    """An upper bound on the audio in the server's input buffer.

    Bytes are counted as a running total; the buffer starts where the server last emptied it. A
    client commit/clear empties what was appended BEFORE it, but only once the server confirms
    (`committed`/`cleared`): a refused commit leaves the buffer as it was, and appends sent after
    the commit stay in the buffer. A server-VAD commit (no client commit pending) covers an unknown
    part of the buffer, so it empties nothing here. Milliseconds use the smallest bytes/ms of the
    formats in play while the buffered bytes were appended and now (the server measures the buffer
    in its current format)."""

    __slots__ = (
        "_pending_formats",
        "_pending_overflow",
        "_resets",
        "confirmed_bpm",
        "floor_bpm",
        "start_bytes",
        "total_bytes",
    )

    def __init__(self) -> None:
        self.total_bytes = 0.0  # every append forwarded (upper bound: frame length * 3/4)
        self.start_bytes = 0.0  # the total where the buffer was last known empty
        self.floor_bpm = _INF  # smallest bytes/ms in play at an append since the start
        # Per client commit/clear not yet confirmed: [total at the reset, floor of later appends].
        # Lists, not deques: at most MAX_PENDING entries, and an empty deque costs ~700 bytes a
        # session against ~56 (issue 26, idle memory).
        self._resets: list[list[float]] = []
        self.confirmed_bpm: float | None = None  # the input format the server last reported
        self._pending_formats: list[float | None] = []  # one per unanswered session.update
        self._pending_overflow = False

    def _in_play(self) -> float:
        if self._pending_overflow:
            return MIN_BYTES_PER_MS
        if not self._pending_formats:  # the usual case (every append calls this): no list built
            return self.confirmed_bpm or MIN_BYTES_PER_MS
        return min([self.confirmed_bpm or MIN_BYTES_PER_MS, *(b for b in self._pending_formats if b)])

    @property
    def ms_upper_bound(self) -> float:
        return (self.total_bytes - self.start_bytes) / min(self.floor_bpm, self._in_play())

    def set_ms(self, ms: float) -> None:
        """Tests and tools: make the buffer hold `ms` in the formats now in play."""
        self.start_bytes, self.total_bytes = 0.0, ms * self._in_play()

    def append(self, frame_len: int) -> None:
        self.total_bytes += frame_len * 0.75  # base64 is 4/3 of the bytes; the frame is longer still
        bpm = self._in_play()
        if bpm < self.floor_bpm:
            self.floor_bpm = bpm
        for reset in self._resets:
            if bpm < reset[1]:
                reset[1] = bpm

    def unreadable(self) -> None:
        self.total_bytes += UNREADABLE_BYTES

    def client_reset(self) -> None:
        if len(self._resets) < MAX_PENDING:  # past that the oldest (smaller) totals stay: larger count
            self._resets.append([self.total_bytes, float("inf")])

    def server_reset(self) -> None:
        if self._resets:
            total, floor = self._resets.pop(0)
            if total > self.start_bytes:
                self.start_bytes, self.floor_bpm = total, floor

    def update_sent(self, fmt: Any, has_format: bool) -> None:
        if len(self._pending_formats) >= MAX_PENDING:
            self._pending_overflow = True
            return
        self._pending_formats.append((bytes_per_ms(fmt) or MIN_BYTES_PER_MS) if has_format else None)

    def session_reported(self, fmt: Any, has_format: bool, *, answers_update: bool) -> None:
        if answers_update and self._pending_formats:
            self._pending_formats.pop(0)
        if has_format:
            self.confirmed_bpm = bytes_per_ms(fmt)


class OutputAudio:
    """Per item, an upper bound on the milliseconds of audio the proxy relayed to the client."""

    __slots__ = ("_create_floor", "_response_bpm", "delivered_ms", "session_bpm")

    def __init__(self) -> None:
        self.session_bpm: float | None = None  # the output format the server last reported
        self._create_floor: float | None = None  # smallest format any response.create asked for
        # Both made with their first entry (None until then): ~130 B per idle session (issue 26).
        self._response_bpm: dict[str, float] | None = None
        self.delivered_ms: dict[str, float] | None = None

    def create_sent(self, response: Any) -> None:
        audio = response.get("audio") if isinstance(response, dict) else None
        output = audio.get("output") if isinstance(audio, dict) else None
        if isinstance(output, dict) and "format" in output:
            bpm = bytes_per_ms(output["format"]) or MIN_BYTES_PER_MS
            self._create_floor = bpm if self._create_floor is None else min(self._create_floor, bpm)

    def response_created(self, response: dict[str, Any]) -> None:
        rid = response.get("id")
        if not isinstance(rid, str):
            return
        audio = response.get("audio")
        output = audio.get("output") if isinstance(audio, dict) else None
        own = bytes_per_ms(output.get("format")) if isinstance(output, dict) else None
        if self._response_bpm is None:
            self._response_bpm = {}
        _bounded_put(self._response_bpm, rid, own if own is not None else self._fallback())

    def _fallback(self) -> float:
        """Not echoed by the server: the session's format, or any format a create asked for."""
        session = self.session_bpm or MIN_BYTES_PER_MS
        return session if self._create_floor is None else min(session, self._create_floor)

    def delta(self, item_id: str, response_id: str | None, b64_len: int) -> None:
        known = self._response_bpm
        bpm = known.get(response_id) if known is not None and response_id is not None else None
        if bpm is None:  # a response the proxy did not see created
            bpm = self._fallback()
        ms = b64_len * 0.75 / bpm
        delivered = self.delivered_ms
        if delivered is None:
            delivered = self.delivered_ms = {}
        before = delivered.get(item_id)
        if before is None:
            _bounded_put(delivered, item_id, ms)
        else:  # the usual case, every delta of an item after its first
            delivered[item_id] = before + ms


def _bounded_put(table: dict[str, float], key: str, value: float) -> None:
    if key not in table and len(table) >= MAX_TRACKED:
        del table[next(iter(table))]  # oldest first: dicts keep insertion order
    table[key] = value

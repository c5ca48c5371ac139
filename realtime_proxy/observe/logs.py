"""structlog set-up: JSON lines in production, console on a TTY, and redaction as a processor.

Redaction runs on every line, whatever the caller passed, so a secret or an audio payload cannot
reach the output by a forgotten habit. Every line goes out through one `LineSink`: a write that
fails (stdout's reader gone) is counted and dropped, never raised into the code that logged.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from itertools import islice
from typing import Any, TextIO

import orjson
import structlog

REDACTED = "[REDACTED]"
_SECRET_KEYS = frozenset(
    {"authorization", "api-key", "api_key", "apikey", "proxy-authorization", "cookie", "set-cookie", "token"}
)
# Base64 audio fields of the Realtime protocol: replaced by their length.
_AUDIO_KEYS = frozenset({"audio", "delta_audio"})
_AUDIO_EVENT_DELTA = "delta"
_SECRET_PATTERNS = (
    re.compile(r"openai-insecure-api-key\.[^\s,;\"']+", re.IGNORECASE),
    re.compile(r"\b(?:sk|ek)[-_][A-Za-z0-9_\-*]{6,}"),
    re.compile(r"(?i)\bbearer\s+[^\s,;\"']+"),
    re.compile(r"(?i)([?&](?:api-key|api_key|authorization|key|token)=)[^&\s\"']*"),
    # A credential header written out in free text (`Authorization: Token x`, `('api-key', 'x')`,
    # `invalid cookie header: x`): the rest of the value goes, whatever its scheme.
    re.compile(
        r"(?i)(\b(?:proxy-)?authorization|\b(?:x-)?api[-_]?key|\b(?:set-)?cookie)((?:\s+header)?[\"']?\s*[:=,]\s*[\"']?)"
        r"[^\"'\r\n&]+"
    ),
    # websockets' messages for a header it could not parse or accept quote the raw value
    # (`invalid HTTP header value: Token x`, `invalid Sec-WebSocket-Protocol header: ...`).
    re.compile(r"(?i)(\binvalid [A-Za-z0-9-]+(?: HTTP)? header(?: value| line| name)?: )()[^\r\n]*"),
)
# Audio (base64) pasted into free text, e.g. a tool description or an upstream error message.
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{256,}={0,2}")
# The message line of a traceback (`module.Error: message`); kept to its class for websockets' own
# handshake failures, whose messages may quote any header value the client sent.
_EXCEPTION_MESSAGE = re.compile(r"^([A-Za-z_][\w.]*): .+$", re.MULTILINE)
# Handshake headers whose values are safe to log; every other header's value is redacted.
_SAFE_HEADERS = frozenset(
    {"host", "user-agent", "upgrade", "connection", "sec-websocket-version", "sec-websocket-extensions"}
    | {"openai-beta", "content-type", "content-length", "x-request-id"}
)


# Every pattern above needs one of these in the lower-cased text (or, _BASE64_RUN, 256 characters):
# a text with none is returned as is, which spares the seven substitutions for the short values
# most log fields are. None of them holds an `i` or an `s`, whose case-blind matches in `re` are
# wider than str.lower() (dotted capital I, dotless i, long s); `k` has the Kelvin sign, which
# lower() maps to `k`. Spelt out as one expression: the cheapest form (tests/unit/test_logs_prefilter.py).


def _maybe_secret(text: str) -> bool:
    if len(text) >= 256:
        return True
    low = text.lower()
    return (
        "key" in low or "bearer" in low or "token" in low or "author" in low or "cook" in low
        or "nval" in low or "sk-" in low or "sk_" in low or "ek-" in low or "ek_" in low
    )  # fmt: skip


def redact_text(text: str) -> str:
    if not _maybe_secret(text):
        return text
    for pattern in _SECRET_PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: "".join(m.groups()) + REDACTED, text)
        else:
            text = pattern.sub(REDACTED, text)
    return _BASE64_RUN.sub(lambda m: f"<{len(m.group(0))} chars of base64>", text)


def safe_headers(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Handshake headers for a log line: every value redacted but a few harmless ones."""
    return {name: value if name.lower() in _SAFE_HEADERS else REDACTED for name, value in items}


# Every logged value is capped (a 200 KiB event_id or upstream error message was logged whole):
# strings to MAX_VALUE_CHARS with their length noted, containers to MAX_ITEMS entries; a
# traceback keeps its last MAX_TRACEBACK_CHARS (the error is at its end).
MAX_VALUE_CHARS = 1024
MAX_ITEMS = 64
MAX_TRACEBACK_CHARS = 8192


def cap_text(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    """Redacted, then cut to `limit` characters with the original length noted. Only a window
    twice the limit is redacted, so the regex cost is bounded too; a secret that straddles the
    window's end is cut away with it."""
    if len(text) <= limit:
        return redact_text(text)
    kept = redact_text(text[: 2 * limit])[:limit]
    return f"{kept}...<{len(text)} chars>"


def _cap_traceback(text: str) -> str:
    if len(text) <= MAX_TRACEBACK_CHARS:
        return redact_text(text)
    tail = redact_text(text[-2 * MAX_TRACEBACK_CHARS :])[-MAX_TRACEBACK_CHARS:]
    return f"<{len(text)} chars, the last {MAX_TRACEBACK_CHARS}>...{tail}"


_SCALARS = (int, float, bool, type(None))  # kept as they are, unless their key names a secret


def redact_value(value: Any, key: str | None = None, *, depth: int = 0) -> Any:
    if type(value) in _SCALARS and depth <= 20:  # most fields: no isinstance chain
        return REDACTED if key is not None and key.lower() in _SECRET_KEYS else value
    if key is not None:
        lowered = key.lower()
        if lowered in _SECRET_KEYS:
            return REDACTED
        if (lowered in _AUDIO_KEYS or lowered == _AUDIO_EVENT_DELTA) and isinstance(value, str | bytes):
            return f"<{len(value)} chars>"
    if depth > 20:
        return "<nested>"
    if isinstance(value, str):
        return _cap_traceback(value) if key == "exception" else cap_text(value)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, dict):
        capped = {
            cap_text(str(k)): redact_value(v, str(k), depth=depth + 1)
            for k, v in islice(value.items(), MAX_ITEMS)
        }
        if len(value) > MAX_ITEMS:
            capped["..."] = f"<{len(value)} keys>"
        return capped
    if isinstance(value, list | tuple):
        items = [redact_value(v, depth=depth + 1) for v in value[:MAX_ITEMS]]
        return items if len(value) <= MAX_ITEMS else [*items, f"<{len(value)} items>"]
    return value


def redact_processor(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
    record = event_dict.get("_record")
    if record is not None and record.name.startswith("websockets") and "exception" in event_dict:
        event_dict["exception"] = _EXCEPTION_MESSAGE.sub(r"\1: [REDACTED]", str(event_dict["exception"]))
    return {key: redact_value(value, key) for key, value in event_dict.items()}


def _orjson_dumps(value: Any, **_kwargs: Any) -> str:
    return orjson.dumps(value, default=str).decode()


class LineSink:
    """Writes whole log lines. A real file descriptor gets one `os.write` per line (no Python buffer
    to fail again at exit; lines up to PIPE_BUF, 4 KiB, stay whole on a pipe shared by several
    workers); any other stream gets write+flush. Failures are counted in `dropped` and swallowed."""

    dropped = 0  # per process, every sink: exported as realtime_proxy_log_lines_dropped_total

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.fd: int | None = None
        if stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            try:
                stream.flush()
                self.fd = stream.fileno()
            except (OSError, ValueError):
                self.fd = None
        self._reported = False

    def write(self, line: str) -> None:
        try:
            if self.fd is None:
                self.stream.write(line + "\n")
                self.stream.flush()
                return
            data = memoryview((line + "\n").encode("utf-8", "replace"))
            while data:
                data = data[os.write(self.fd, data) :]
        except (OSError, ValueError) as exc:  # EPIPE, EAGAIN, a closed stream: the session goes on
            LineSink.dropped += 1
            self._report(exc)

    def _report(self, exc: BaseException) -> None:
        """Say once on stderr why lines go missing (stderr may be gone too: then say nothing)."""
        if self._reported:
            return
        self._reported = True
        with contextlib.suppress(OSError):
            os.write(2, f"realtime-proxy: log output failed ({type(exc).__name__}); lines dropped\n".encode())


class _SinkLogger:
    """structlog's PrintLogger, writing through a LineSink. Stateless but for the sink: one is
    shared by every bound logger (a session's bind no longer makes its own; issue 26)."""

    __slots__ = ("sink",)

    def __init__(self, sink: LineSink) -> None:
        self.sink = sink

    def msg(self, message: str) -> None:
        self.sink.write(message)

    log = debug = info = warn = warning = err = error = critical = exception = fatal = failure = msg


class _SinkHandler(logging.Handler):
    def __init__(self, sink: LineSink) -> None:
        super().__init__()
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # a formatting failure drops the line like a failed write
            LineSink.dropped += 1
            return
        self.sink.write(line)


def dropped_lines() -> int:
    return LineSink.dropped


def configure_logging(
    *,
    log_format: str = "auto",
    level: str = "info",
    stream: TextIO | None = None,
    static: Mapping[str, Any] | None = None,
) -> None:
    """Configure structlog and route stdlib logging (websockets') through the same chain.

    `static`: fields added to every line (a worker's index)."""
    stream = stream or sys.stdout
    sink = LineSink(stream)
    fields = dict(static or {})

    def add_static(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
        for key, value in fields.items():
            event_dict.setdefault(key, value)
        return event_dict

    use_console = log_format == "console" or (log_format == "auto" and stream.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=stream.isatty())
        if use_console
        else structlog.processors.JSONRenderer(serializer=_orjson_dumps)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact_processor,
        *([add_static] if fields else []),
    ]
    numeric_level = logging.getLevelNamesMapping()[level.upper()]
    sink_logger = _SinkLogger(sink)
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=lambda *_args: sink_logger,
        cache_logger_on_first_use=False,
    )
    handler = _SinkHandler(sink)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric_level)
    # websockets logs every connection at INFO/DEBUG; the proxy logs sessions itself.
    logging.getLogger("websockets").setLevel(max(numeric_level, logging.WARNING))


def get_logger(name: str = "proxy") -> Any:
    return structlog.get_logger(name)


_SHARED_KEYS: dict[tuple[str, ...], tuple[str, ...]] = {}


class SessionLog:
    """A session's logger: what `logger.bind(**fields)` gave, for the methods sessions call. The
    fields stay in one slotted object (their names shared by every session) and are merged into each
    line when it is logged, through the configuration of that moment: a structlog bound logger per
    session (the logger, its dict, its context dict) cost ~760 B in every idle session (issue 26).
    Lines are the same: the fields first, in order, then the call's own (which win on a clash)."""

    __slots__ = ("_keys", "_logger", "_values")

    def __init__(self, logger: Any, **fields: Any) -> None:
        keys = tuple(fields)
        self._keys = _SHARED_KEYS.setdefault(keys, keys) if len(_SHARED_KEYS) < 64 else keys
        self._values = tuple(fields.values())
        self._logger = logger

    @property
    def fields(self) -> dict[str, Any]:
        return dict(zip(self._keys, self._values, strict=True))

    def _log(self, method: str, event: str, kw: dict[str, Any]) -> Any:
        return getattr(self._logger, method)(event, **{**self.fields, **kw})

    def debug(self, event: str, **kw: Any) -> Any:
        return self._log("debug", event, kw)

    def info(self, event: str, **kw: Any) -> Any:
        return self._log("info", event, kw)

    def warning(self, event: str, **kw: Any) -> Any:
        return self._log("warning", event, kw)

    def error(self, event: str, **kw: Any) -> Any:
        return self._log("error", event, kw)

    def exception(self, event: str, **kw: Any) -> Any:
        return self._log("exception", event, kw)

"""The log output, surviving its reader: once the pipe is gone (`realtime-proxy | head -1`, a log
shipper that died), log lines are dropped and the proxy goes on serving. Without this the first line
after the reader left raised BrokenPipeError in whatever code was logging, and sessions failed."""

from __future__ import annotations

import contextlib
import sys
from typing import TextIO


class LossyStream:
    """A text stream whose writes never raise once the reader is gone: the rest is dropped."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.closed_by_reader = False

    def write(self, text: str) -> int:
        if not self.closed_by_reader:
            try:
                return self.stream.write(text)
            except (BrokenPipeError, ConnectionResetError, ValueError):  # ValueError: stream closed
                self._lost()
        return len(text)

    def flush(self) -> None:
        if not self.closed_by_reader:
            try:
                self.stream.flush()
            except (BrokenPipeError, ConnectionResetError, ValueError):
                self._lost()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def _lost(self) -> None:
        self.closed_by_reader = True
        with contextlib.suppress(OSError, ValueError):  # stderr may be the same broken pipe
            print("realtime-proxy: log output closed by its reader; log lines are dropped", file=sys.stderr)


def lossy(stream: TextIO) -> TextIO:
    return stream if isinstance(stream, LossyStream) else LossyStream(stream)  # type: ignore[return-value]

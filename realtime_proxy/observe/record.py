"""Optional session capture for `realtime-proxy lint`: each session's client events as JSONL, with
audio replaced by its length and secrets redacted by the same processor the logs use."""

from __future__ import annotations

from pathlib import Path
from typing import IO

import orjson

from realtime_proxy.core.actions import Frame
from realtime_proxy.core.events import parse_guarded
from realtime_proxy.observe.logs import redact_value


class SessionRecorder:
    def __init__(self, directory: str, session_id: str) -> None:
        Path(directory).mkdir(parents=True, exist_ok=True)
        self.path = Path(directory) / f"{session_id}.jsonl"
        self._file: IO[bytes] = self.path.open("ab")

    def record(self, frame: Frame) -> None:
        event = parse_guarded(frame) if isinstance(frame, str) else None
        if event is None:  # not an event object: note its size only
            line: object = {"unparsed_frame_bytes": len(frame)}
        else:
            line = redact_value(event)
        self._file.write(orjson.dumps(line) + b"\n")

    def close(self) -> None:
        self._file.close()

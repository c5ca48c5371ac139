"""In-process fake of the OpenAI Realtime API (GA shape), served by `--fake-upstream` and used by tests."""

from __future__ import annotations

from .server import ConnectionRecord, FakeUpstream, serve_fake_upstream
from .session import FakeSession

__all__ = ["ConnectionRecord", "FakeSession", "FakeUpstream", "serve_fake_upstream"]

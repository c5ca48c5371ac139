"""`python -m proxy` under uvloop, without touching proxy/: the `--uvloop` variant of the benchmark."""

from __future__ import annotations

import asyncio
import sys

import uvloop

from proxy.cli import main

if __name__ == "__main__":
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    sys.exit(main())

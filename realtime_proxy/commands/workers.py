"""Every core: `--workers N` (default one per available CPU) runs a supervisor and N workers
(`supervisor.py`); one alone (`--workers 1`) serves by itself (`serve.py`)."""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path

from realtime_proxy.commands.worker_link import WORKER_ENV
from realtime_proxy.settings import Settings

__all__ = ["WORKER_ENV", "available_cpus", "supervise", "worker_count"]


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup v2 `cpu.max` quota."""
    count = len(os.sched_getaffinity(0))
    with contextlib.suppress(OSError, ValueError):
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            count = min(count, max(1, math.ceil(int(quota) / int(period))))
    return count


def worker_count(settings: Settings) -> int:
    if os.environ.get(WORKER_ENV):
        return 1
    return settings.workers or available_cpus()


async def supervise(settings: Settings, count: int, argv: list[str]) -> int:
    """Run `count` workers until SIGTERM/SIGINT; exit 1 (raised) if they cannot all start."""
    from realtime_proxy.commands.supervisor import Supervisor

    return await Supervisor(settings, count, argv).run()

"""Per-proxy limits that span worker processes, as nginx's `limit_conn` zones do.

The supervisor creates one small shared-memory zone (a memfd, or an unlinked temporary file, mapped
MAP_SHARED) and hands its fd to every worker. The zone holds one session counter per worker
*process* (a slot the supervisor assigns at spawn): a worker only ever changes its own slot, and
admission reads the sum of all slots, both under an fcntl (POSIX) record lock, which is owned per
process, so workers exclude each other although they share the same open file. When the supervisor
reaps a worker it zeroes that worker's slot: a dead worker's sessions never hold the limit.

One process alone (`--workers 1`) uses `LocalSlots`, a plain counter: same interface, no syscalls.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import tempfile
from collections.abc import Iterator
from typing import Protocol

_WORD = 8  # one signed 64-bit counter per process slot


class SessionSlots(Protocol):
    """Session admission: `acquire` before a handshake goes upstream, `release` once per acquire."""

    limit: int

    def acquire(self) -> bool: ...

    def release(self) -> None: ...

    def in_use(self) -> int: ...


class LocalSlots:
    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0

    def acquire(self) -> bool:
        if self.used >= self.limit:
            return False
        self.used += 1
        return True

    def release(self) -> None:
        self.used = max(0, self.used - 1)

    def in_use(self) -> int:
        return self.used


class Zone:
    """`capacity` counters in shared memory, one per worker process slot."""

    def __init__(self, fd: int, capacity: int) -> None:
        self.fd, self.capacity = fd, capacity
        self._map = mmap.mmap(fd, capacity * _WORD, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self._counts = memoryview(self._map).cast("q")

    @classmethod
    def create(cls, capacity: int) -> Zone:
        try:
            fd = os.memfd_create("realtime-proxy-limits", 0)  # Linux; not inheritable (pass_fds hands it on)
        except (AttributeError, OSError):
            handle, path = tempfile.mkstemp(prefix="realtime-proxy-limits-")
            os.unlink(path)
            fd = handle
        os.ftruncate(fd, capacity * _WORD)
        return cls(fd, capacity)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        fcntl.lockf(self.fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.lockf(self.fd, fcntl.LOCK_UN)

    def total(self) -> int:
        return sum(self._counts)

    def count(self, slot: int) -> int:
        return int(self._counts[slot])

    def add(self, slot: int, delta: int) -> None:
        self._counts[slot] = max(0, self._counts[slot] + delta)

    def clear(self, slot: int) -> None:
        """The process in `slot` is gone: its sessions went with it."""
        if self._map.closed:
            return
        with self.locked():
            self._counts[slot] = 0

    def close(self) -> None:
        if self._map.closed:
            return
        self._counts.release()
        self._map.close()
        os.close(self.fd)


class SharedSlots:
    """A worker's view of the zone: the limit applies to the sum over every worker."""

    def __init__(self, zone: Zone, slot: int, limit: int) -> None:
        self.zone, self.slot, self.limit = zone, slot, limit

    def acquire(self) -> bool:
        with self.zone.locked():
            if self.zone.total() >= self.limit:
                return False
            self.zone.add(self.slot, 1)
            return True

    def release(self) -> None:
        with self.zone.locked():
            self.zone.add(self.slot, -1)

    def in_use(self) -> int:
        return self.zone.total()

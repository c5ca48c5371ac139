"""What a supervisor hands each worker, and the worker's side of it.

A worker inherits three file descriptors (numbers in REALTIME_WORKER_LINK): its listening socket
(bound by the supervisor, SO_REUSEPORT among this supervisor's sockets only), the write end of a
readiness pipe (one JSON line once it serves: no log parsing, whatever --log-format says; its final
metrics when it stops, then EOF) and the shared limits zone with its slot there. It asks the kernel
for SIGTERM when the supervisor dies (PR_SET_PDEATHSIG), so a killed supervisor never leaves workers
on the port.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import signal
import socket
import sys
from dataclasses import dataclass

WORKER_ENV = "REALTIME_WORKER_INDEX"  # not REALTIME_PROXY_*: those are settings
LINK_ENV = "REALTIME_WORKER_LINK"
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class WorkerLink:
    index: int
    listen_fd: int
    ready_fd: int
    zone_fd: int
    zone_slot: int
    zone_capacity: int
    supervisor_pid: int

    def env(self) -> dict[str, str]:
        fields = (self.listen_fd, self.ready_fd, self.zone_fd, self.zone_slot, self.zone_capacity)
        link = ",".join(str(n) for n in (*fields, self.supervisor_pid))
        return {WORKER_ENV: str(self.index), LINK_ENV: link}

    @classmethod
    def from_env(cls, environ: dict[str, str] | os._Environ[str]) -> WorkerLink | None:
        raw = environ.get(LINK_ENV)
        if not raw or not environ.get(WORKER_ENV):
            return None
        listen_fd, ready_fd, zone_fd, slot, capacity, parent = (int(n) for n in raw.split(","))
        return cls(int(environ[WORKER_ENV]), listen_fd, ready_fd, zone_fd, slot, capacity, parent)

    def die_with_supervisor(self) -> None:
        """SIGTERM (a graceful drain) when the supervisor dies; exit now if it already has."""
        if sys.platform == "linux":
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != self.supervisor_pid:
            raise SystemExit(1)

    def listening_socket(self) -> socket.socket:
        return socket.socket(fileno=self.listen_fd)

    def report_ready(self, metrics_port: int) -> None:
        """One line on the readiness pipe (EOF without it: the worker failed)."""
        self._write(json.dumps({"pid": os.getpid(), "metrics_port": metrics_port}).encode() + b"\n")

    def report_final(self, exposition: bytes) -> None:
        """The final metrics on the same pipe, then EOF: the supervisor's counters carry on with them."""
        try:
            self._write(exposition)
        finally:
            os.close(self.ready_fd)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.ready_fd, view) :]
        except OSError as exc:  # the supervisor is gone: PDEATHSIG will end this process
            if exc.errno != errno.EPIPE:
                raise


def claim_port(host: str, port: int) -> socket.socket:
    """Bind `host:port` for this supervisor alone, or fail if anything serves it already.

    A first bind without SO_REUSEPORT fails (EADDRINUSE) if any socket holds the port, even other
    SO_REUSEPORT sockets (another instance's); it is then re-bound with SO_REUSEPORT, not listening,
    as the anchor that keeps the port for this supervisor's worker sockets. Returns the anchor."""
    family, address = _address(host, port)
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no conflict
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise OSError(
                    exc.errno, f"port {port} on {host} is already in use (another proxy?)"
                ) from None
            raise
        address = (address[0], probe.getsockname()[1], *address[2:])  # port 0: one concrete port
    finally:
        probe.close()
    anchor = socket.socket(family, socket.SOCK_STREAM)
    anchor.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    anchor.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    anchor.bind(address)
    return anchor


def worker_socket(anchor: socket.socket, backlog: int = 511) -> socket.socket:
    """A listening socket on the anchor's address, in this supervisor's SO_REUSEPORT group."""
    sock = socket.socket(anchor.family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(anchor.getsockname())
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


def _address(
    host: str, port: int
) -> tuple[socket.AddressFamily, tuple[str, int] | tuple[str, int, int, int]]:
    info = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    return info[0], info[4]  # type: ignore[return-value]

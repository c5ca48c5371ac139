"""Child processes of the benchmark: servers that announce their port on stdout, always killed."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


class Server:
    """A child process writing its output to a file; `port` is read from its first JSON line."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        workdir: Path,
        *,
        env: dict[str, str] | None = None,
        cwd: Path = ROOT,
    ) -> None:
        self.name = name
        self.log_path = workdir / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        self.pid = self.proc.pid
        self.port = 0

    def wait_port(self, timeout: float = 20.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_path.read_text()[-2000:]}")
            for line in self.log_path.read_text(errors="replace").splitlines():
                if line.startswith("{") and '"port"' in line:
                    self.port = int(json.loads(line)["port"])
                    return self.port
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} did not announce its port in {timeout} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_upstream(workdir: Path, *, use_uvloop: bool = True) -> Server:
    server = Server("upstream", [PY, "-m", "bench.upstream", *(["--uvloop"] * use_uvloop)], workdir)
    server.wait_port()
    return server


def start_target(target: str, upstream_port: int, workdir: Path) -> Server:
    """Start the relay under test: bare, bare-uvloop, bare-sansio, proxy, proxy-uvloop, proxy-w<N>
    (N workers), proxy-before or nginx."""
    upstream = f"ws://127.0.0.1:{upstream_port}"
    extra_env: dict[str, str] = {}
    cwd = ROOT
    if target == "bare-sansio":
        argv = [PY, "-m", "bench.bare_sansio", "--upstream-url", upstream]
    elif target.startswith("bare"):
        argv = [PY, "-m", "bench.bare_relay", "--upstream-url", upstream]
        argv += ["--uvloop"] if target.endswith("uvloop") else []
    elif target.startswith("proxy"):
        argv = [PY, "-m", "realtime_proxy", "--host", "127.0.0.1", "--port", "0", "--metrics-port", "0"]
        argv += ["--upstream-url", upstream, "--log-format", "json", "--log-level", "info"]
        if target.startswith("proxy-before"):  # another checkout of the proxy (same-run before/after)
            cwd = Path(os.environ["BENCH_BASELINE_SRC"])  # `-m` puts the working directory first
            extra_env["PYTHONPATH"] = str(cwd)
        else:  # one process per column; proxy-w<N>: N workers (the multi-process curve)
            extra_env["REALTIME_PROXY_WORKERS"] = target[7:] if target.startswith("proxy-w") else "1"
    elif target == "nginx":
        return _start_nginx(upstream_port, workdir)
    else:
        raise ValueError(target)
    # Each proxy column pins its loop, so it is compared with the bare relay on the same loop.
    loop = "uvloop" if target.endswith("uvloop") else "asyncio"
    env = {"REALTIME_PROXY_METRICS_HOST": "127.0.0.1", "REALTIME_PROXY_EVENT_LOOP": loop, **extra_env}
    server = Server(target, argv, workdir, env=env, cwd=cwd)
    server.wait_port()
    return server


NGINX_CONF = """
daemon off; master_process off; worker_processes 1; pid {dir}/nginx.pid; error_log {dir}/nginx.err warn;
events {{ worker_connections 8192; }}
http {{
  access_log off; client_body_temp_path {dir}; proxy_temp_path {dir};
  fastcgi_temp_path {dir}; uwsgi_temp_path {dir}; scgi_temp_path {dir};
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://127.0.0.1:{upstream};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_buffering off;
      proxy_read_timeout 3600s;
    }}
  }}
}}
"""


def nginx_available() -> bool:
    return shutil.which("nginx") is not None


def _start_nginx(upstream_port: int, workdir: Path) -> Server:
    conf_dir = Path(tempfile.mkdtemp(prefix="nginx-", dir=workdir))
    port = free_port()
    conf = conf_dir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=conf_dir, port=port, upstream=upstream_port))
    server = Server("nginx", ["nginx", "-p", str(conf_dir), "-c", str(conf)], workdir)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                server.port = port
                return server
        if server.proc.poll() is not None:
            raise RuntimeError(f"nginx exited: {server.log_path.read_text()[-2000:]}")
        time.sleep(0.05)
    server.stop()
    raise TimeoutError("nginx did not listen")

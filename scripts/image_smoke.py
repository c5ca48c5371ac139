"""Start the image built by `scripts/build_rootfs.py build` (as its USER, uid 10001, with ENTRYPOINT +
CMD and `--fake-upstream` through the environment) and check /healthz, /metrics and one relayed
WebSocket session; then SIGTERM must stop it with exit 0. Needs root (chroot) and the `websockets`
package: `sudo .venv/bin/python scripts/image_smoke.py`."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from websockets.sync.client import connect

ROOT = Path(__file__).resolve().parent.parent
IMAGE_UID = 10001


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(port: int, path: str) -> tuple[int, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return int(response.status), response.read().decode()


def wait_healthy(port: int, proc: subprocess.Popen[bytes], seconds: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if proc.poll() is not None:
            raise SystemExit(f"image_smoke: the proxy exited with {proc.returncode} before /healthz")
        try:
            if get(port, "/healthz")[0] == 200:
                return time.monotonic() - started
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"image_smoke: /healthz did not answer within {seconds} s")


def proxy_uids(ancestor: int) -> dict[int, int]:
    """pid -> real uid of every `realtime-proxy` process under `ancestor` (the runner's chroot child and
    the workers it supervises)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    found: dict[int, int] = {}
    for pid in parents:
        chain, up = [], pid
        while up in parents and up != ancestor and len(chain) < 64:
            chain.append(up)
            up = parents[up]
        try:
            if up == ancestor and b"realtime-proxy" in Path(f"/proc/{pid}/cmdline").read_bytes():
                status = Path(f"/proc/{pid}/status").read_text()
                found[pid] = int(next(x for x in status.splitlines() if x.startswith("Uid:")).split()[1])
        except OSError:
            continue
    return found


def session(port: int) -> str:
    """One session through the proxy to its simulator: session.created, one text response."""
    url = f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime"
    with connect(url, additional_headers={"Authorization": "Bearer sk-smoke"}, open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "session.created"
        ws.send(json.dumps({"type": "response.create", "response": {"output_modalities": ["text"]}}))
        while True:
            event = json.loads(ws.recv(timeout=10))
            if event["type"] == "response.done":
                return str(event["response"]["status"])


def main() -> int:
    port, metrics_port = free_port(), free_port()
    env = {"REALTIME_PROXY_FAKE_UPSTREAM": "true", "REALTIME_PROXY_PORT": str(port),
           "REALTIME_PROXY_METRICS_PORT": str(metrics_port)}  # fmt: skip
    command = [sys.executable, str(ROOT / "scripts" / "build_rootfs.py"), "run"]
    command += [f"-e{k}={v}" for k, v in env.items()]
    log = ROOT / ".cache" / "rootfs" / "smoke.log"
    with log.open("wb") as out:
        started = time.monotonic()
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        try:
            ready = wait_healthy(metrics_port, proc, 60)
            print(f"image_smoke: /healthz 200 after {ready:.2f} s")
            uids = proxy_uids(proc.pid)
            assert uids and set(uids.values()) == {IMAGE_UID}, f"proxy processes and their uids: {uids}"
            uid = IMAGE_UID
            status = session(port)
            assert status == "completed", status
            code, text = get(metrics_port, "/metrics")
            handshakes = 'realtime_proxy_upstream_handshakes_total{result="ok"} 1.0'
            assert code == 200 and handshakes in text, "no successful handshake counted in /metrics"
            print(f"image_smoke: {len(uids)} proxy processes, all uid {uid}; session response {status}")
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise SystemExit("image_smoke: the proxy did not stop within 20 s of SIGTERM") from None
    print(f"image_smoke: exit {code} after SIGTERM; {time.monotonic() - started:.2f} s in all (log: {log})")
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

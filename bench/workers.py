"""Supervisor timings (docs/workers.md): `python -m bench.workers [--runs 5] [--workers 2]`.

- start: launch to the supervisor's `proxy_listening` line (every worker ready), --fake-upstream;
- respawn: `kill -9` of one worker to the supervisor's /readyz answering 200 again (a new worker
  ready on that slot), measured on one running supervisor;
- zone: one session slot acquired and released in the shared zone (two fcntl locks), in-process.
Medians (and all runs) are printed as JSON."""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _start(workers: int) -> tuple[subprocess.Popen[bytes], dict[str, int], float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REALTIME_PROXY_")}
    env |= {"PYTHONPATH": str(REPO), "REALTIME_PROXY_WORKERS": str(workers)}
    command = [sys.executable, "-m", "realtime_proxy", "--fake-upstream", "--log-format", "json"]
    command += ["--host", "127.0.0.1", "--port", "0", "--metrics-port", "0"]
    started = time.monotonic()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, env=env, cwd=REPO)
    assert proc.stdout is not None
    for raw in proc.stdout:
        if b'"proxy_listening"' in raw:
            event = json.loads(raw)
            return (
                proc,
                {"port": event["port"], "metrics_port": event["metrics_port"]},
                time.monotonic() - started,
            )
    raise SystemExit("the proxy exited before listening")


def _children(pid: int) -> list[int]:
    return [
        int(p)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for p in (task / "children").read_text().split()
    ]


def _ready(metrics_port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/readyz", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    assert proc.stdout is not None
    proc.stdout.close()


def measure(runs: int, workers: int) -> dict[str, object]:
    starts = []
    for _ in range(runs):
        proc, _ports, took = _start(workers)
        starts.append(took)
        _stop(proc)
    proc, ports, _ = _start(workers)
    respawns = []
    try:
        for _ in range(runs):
            victim = _children(proc.pid)[0]
            killed = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            while victim in _children(proc.pid) or not _ready(ports["metrics_port"]):
                time.sleep(0.005)
            respawns.append(time.monotonic() - killed)
            time.sleep(11)  # past STABLE_AFTER: each kill is a first failure (0.1 s backoff)
    finally:
        _stop(proc)
    from realtime_proxy.edge.shared_limits import SharedSlots, Zone

    zone = Zone.create(16)
    slots, count = SharedSlots(zone, 0, 10**9), 20000
    began = time.perf_counter()
    for _ in range(count):
        slots.acquire()
        slots.release()
    zone_us = (time.perf_counter() - began) / count * 1e6
    zone.close()
    return {
        "workers": workers,
        "start_s_median": round(statistics.median(starts), 3),
        "start_s": [round(t, 3) for t in starts],
        "respawn_s_median": round(statistics.median(respawns), 3),
        "respawn_s": [round(t, 3) for t in respawns],
        "zone_acquire_release_us": round(zone_us, 2),
        "load_average": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    print(json.dumps(measure(args.runs, args.workers), indent=2))


if __name__ == "__main__":
    main()

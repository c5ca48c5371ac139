"""The README's first command, exactly as written, in a fresh clone: install from the lock and start
the proxy with --fake-upstream; it must answer /healthz, then stop on SIGTERM.
Prints how long the install and the start took. `python3 scripts/readme_quickstart.py [CLONE_DIR]`
(default .cache/readme-clone, git-ignored; the clone is of the committed HEAD).

The listening ports come from the environment (REALTIME_PROXY_PORT, ..._METRICS_PORT), free ones, so
that the command's text stays the README's while 8080 may be taken on a shared machine."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def first_command() -> str:
    block = re.search(r"^```sh\n(.*?)^```", (ROOT / "README.md").read_text(), re.MULTILINE | re.DOTALL)
    assert block, "README.md has no sh block"
    line = block.group(1).splitlines()[0]
    assert "realtime-proxy --fake-upstream" in line, line
    return line


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    clone = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / ".cache" / "readme-clone"
    shutil.rmtree(clone, ignore_errors=True)
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    port, metrics_port = free_port(), free_port()
    env = {**os.environ, "REALTIME_PROXY_HOST": "127.0.0.1", "REALTIME_PROXY_PORT": str(port),
           "REALTIME_PROXY_METRICS_PORT": str(metrics_port)}  # fmt: skip
    command = first_command()
    print(f"readme_quickstart: {command}", flush=True)
    started = time.monotonic()
    proc = subprocess.Popen(["bash", "-c", command], cwd=clone, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    assert proc.stdout is not None
    installed = None
    try:
        for raw in proc.stdout:
            line = raw.decode(errors="replace")
            if line.startswith("Successfully installed realtime-repair-proxy"):
                installed = time.monotonic() - started  # the second pip is done: the proxy starts
            if '"proxy_listening"' in line and json.loads(line).get("port") == port:
                break
        else:
            raise SystemExit(f"readme_quickstart: the command ended with {proc.wait()} before listening")
        listening = time.monotonic() - started
        installed = installed or listening
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/healthz", timeout=5) as answer:
            assert answer.status == 200
        print(f"readme_quickstart: install {installed:.1f} s, proxy listening {listening - installed:.1f} s "
              f"later, /healthz 200 ({listening:.1f} s from a fresh clone)")  # fmt: skip
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the shell and the proxy it started
        code = proc.wait(timeout=20)
    print(f"readme_quickstart: exit {code} after SIGTERM")
    return 0 if code in (0, -signal.SIGTERM) else 1


if __name__ == "__main__":
    sys.exit(main())

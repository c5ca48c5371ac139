"""Instructions per plain-HTTP request in the proxy process, by callgrind: independent of the machine's
load, unlike CPU time, so two trees can be compared on a busy machine.

    python -m bench.http_costs [--requests 200] [--baseline-src DIR] [--scenario NAME ...]

The proxy (`python -m bench.http proxy`, as `bench.http` runs it) runs under
`valgrind --tool=callgrind`; after a warm-up its counters are zeroed (`callgrind_control -z`), N
requests are sent on one keep-alive connection and the counters dumped (`-d`): instructions /
N. Only the proxy process is counted (not the load generator or the upstream, which is this tree's
`bench.http upstream` for every column). `--baseline-src DIR` adds a column for another checkout
(e.g. `git worktree add /tmp/before main`), run the same way. Needs valgrind (callgrind_control)."""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.http import SCENARIOS, run_scenario
from bench.procs import PY, ROOT, Server

_TOTALS = re.compile(rb"^(?:summary|totals):\s*(\d+)", re.MULTILINE)


def instructions(src: Path, upstream_port: int, scenario: str, n: int, workdir: Path, tag: str) -> int:
    """Instructions the proxy from checkout `src` spends on `n` requests of `scenario`."""
    out = workdir / f"callgrind.{tag}.out"
    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", PY, "-m", "bench.http",
            "proxy", "--upstream-port", str(upstream_port)]  # fmt: skip
    proxy = Server(f"proxy-{tag}", argv, workdir, cwd=src)
    try:
        proxy.wait_port(timeout=180)  # imports under valgrind are slow
        method, path, body = SCENARIOS[scenario]
        asyncio.run(run_scenario(proxy.port, method, path, body, 20))  # warm-up: caches, pool
        _control("-z", proxy.pid)
        # run_scenario sends n + n // 10 requests; ask for the m whose total is n
        m = n * 10 // 11
        asyncio.run(run_scenario(proxy.port, method, path, body, m))
        _control("-d", proxy.pid)
        dumped = sorted(workdir.glob(f"callgrind.{tag}.out.*"))
        match = _TOTALS.search(dumped[-1].read_bytes())
        assert match is not None, f"no totals in {dumped[-1]}"
        return int(match.group(1)) // (m + m // 10)
    finally:
        proxy.stop()


def _control(flag: str, pid: int) -> None:
    subprocess.run(["callgrind_control", flag, str(pid)], check=True, capture_output=True, timeout=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.http_costs")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--baseline-src", type=Path, default=None)
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS), default=None)
    args = parser.parse_args(argv)
    scenarios = args.scenario or list(SCENARIOS)
    trees = {"proxy": ROOT} | ({"proxy-before": args.baseline_src.resolve()} if args.baseline_src else {})
    workdir = Path(tempfile.mkdtemp(prefix="bench-http-costs-"))
    upstream = Server("upstream", [PY, "-m", "bench.http", "upstream"], workdir)
    rows: list[str] = []
    try:
        upstream.wait_port()
        for i, scenario in enumerate(scenarios):
            counts = {
                column: instructions(src, upstream.port, scenario, args.requests, workdir, f"{i}{column}")
                for column, src in trees.items()
            }
            cells = " | ".join(f"{counts[c]:,}" for c in trees)
            ratio = f" | {counts['proxy'] / counts['proxy-before']:.2f}x" if len(trees) > 1 else ""
            rows.append(f"| {scenario} | {cells}{ratio} |")
    finally:
        upstream.stop()
    ratio_head = " | proxy / before" if len(trees) > 1 else ""
    print(f"| scenario | {' | '.join(f'{c} instructions/request' for c in trees)}{ratio_head} |")
    print("|---" * (1 + len(trees) + (len(trees) > 1)) + "|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

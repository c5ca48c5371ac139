"""Orchestration: one upstream, then for every scenario and target a fresh relay process and
fresh client processes; CPU and memory of every process read from /proc; report at the end.

`python -m bench [--quick] [--uvloop] [--targets direct,bare,proxy]`
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import load, report
from bench.procs import Server, nginx_available, start_target, start_upstream
from bench.procstat import CpuWindow, children, memory_kib

RESULTS = Path(__file__).resolve().parent / "results"
URL_PATH = "/v1/realtime?model=gpt-realtime"


def plan(quick: bool) -> dict[str, Any]:
    if quick:
        return {"voice_n": [10, 50], "duration": 2.0, "burst": 10_000, "idle": 200}
    return {"voice_n": [10, 100, 200, 300], "duration": 10.0, "burst": 100_000, "idle": 1000}


def measure(
    target: str, upstream: Server, scenario: str, sessions: int, params: dict[str, Any], workdir: Path
) -> dict[str, Any]:
    """One run: fresh relay (unless direct), clients in 1-2 processes, window from go to results."""
    relay = None if target == "direct" else start_target(target, upstream.port, workdir)
    port = upstream.port if relay is None else relay.port
    ctx = mp.get_context("spawn")
    workers: list[tuple[Any, Any]] = []
    out: dict[str, Any] = {"target": target, "scenario": scenario, "sessions": sessions}
    try:
        time.sleep(0.3)  # let the relay settle before the memory baseline
        base_rss = _tree_memory(relay.pid)["VmRSS"] if relay else 0
        n_workers = 2 if sessions >= 100 else 1
        for first, count in load.split(sessions, n_workers):
            spec = load.LoadSpec(
                url=f"ws://127.0.0.1:{port}{URL_PATH}",
                scenario=scenario,
                sessions=count,
                first_index=first,
                total_sessions=sessions,
                duration=params["duration"],
                rate=50.0 if scenario == "voice" else 0.0,
                burst_events=params["burst"] if scenario == "burst" else 0,
            )
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=load.worker, args=(child, spec), daemon=True)
            proc.start()
            workers.append((proc, parent))
        ready = [_recv(pipe, 120) for _, pipe in workers]
        out["connected"] = sum(r["connected"] for r in ready)
        out["connect_errors"] = [e for r in ready for e in r["connect_errors"]]
        pids = {"upstream": upstream.pid, **{f"client{i}": p.pid for i, (p, _) in enumerate(workers)}}
        if relay is not None:
            pids["relay"] = relay.pid
            # A multi-process proxy: its workers do the relaying; the supervisor only supervises.
            pids.update({f"relay-worker{i}": pid for i, pid in enumerate(children(relay.pid))})
        if scenario == "idle":
            time.sleep(1.0)
            if relay is not None:
                mem = _tree_memory(relay.pid)
                out.update(rss_kib=mem["VmRSS"], hwm_kib=mem["VmHWM"], base_rss_kib=base_rss)
            return out
        window = CpuWindow(pids)
        window.start()
        began = time.monotonic()
        for _, pipe in workers:
            pipe.send(("go", time.monotonic() + 0.2))
        results = [_recv(pipe, params["duration"] + 120) for _, pipe in workers]
        out["window_s"] = time.monotonic() - began
        used = window.stop()
        if relay is not None:
            mem = _tree_memory(relay.pid)
            out.update(rss_kib=mem["VmRSS"], hwm_kib=mem["VmHWM"], base_rss_kib=base_rss)
        out["cpu_s"] = {
            "relay": sum(v for k, v in used.items() if k.startswith("relay")) if relay else None,
            "upstream": used["upstream"],
            "clients": sum(v for k, v in used.items() if k.startswith("client")),
        }
        out["client_elapsed_s"] = max(r["elapsed"] for r in results)
        out.update(
            load.summarise([s for r in results for s in r["stats"]], 50.0 if scenario == "voice" else 0.0)
        )
        return out
    finally:
        for _, pipe in workers:
            with contextlib.suppress(OSError):
                pipe.send("close")
        for proc, _ in workers:
            proc.join(15)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        if relay is not None:
            relay.stop()


def _tree_memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of the relay and its workers, summed."""
    total = {"VmRSS": 0, "VmHWM": 0}
    for each in [pid, *children(pid)]:
        for key, value in memory_kib(each).items():
            total[key] += value
    return total


def _recv(pipe: Any, timeout: float) -> Any:
    if not pipe.poll(timeout):
        raise TimeoutError(f"load worker did not answer within {timeout} s")
    return pipe.recv()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short CI smoke run (< 90 s)")
    parser.add_argument("--uvloop", action="store_true", help="also measure bare relay and proxy on uvloop")
    parser.add_argument(
        "--targets", help="comma-separated subset of direct,bare,bare-sansio,proxy,proxy-w2,..."
    )
    parser.add_argument(
        "--workers-curve", help="also run the proxy with these worker counts, e.g. 1,2 (targets proxy-w<N>)"
    )
    parser.add_argument("--scenarios", default="voice,burst,idle")
    parser.add_argument("--duration", type=float, help="override seconds per voice run")
    parser.add_argument("--sessions", help="override voice session counts, e.g. 10,100")
    parser.add_argument(
        "--baseline-src",
        type=Path,
        help="another checkout of this repo (e.g. `git worktree add /tmp/before main`): adds the "
        "target proxy-before, run from that source in the same run",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory for latest.md / latest.json")
    args = parser.parse_args(argv)
    params = plan(args.quick)
    if args.duration:
        params["duration"] = args.duration
    if args.sessions:
        params["voice_n"] = [int(x) for x in args.sessions.split(",")]
    targets = [t for t in (args.targets or "direct,bare,bare-sansio,proxy").split(",") if t]
    notes: list[str] = []
    if args.uvloop:
        targets += ["bare-uvloop", "proxy-uvloop"]
    if args.workers_curve:
        targets += [f"proxy-w{n}" for n in args.workers_curve.split(",") if n]
    if args.baseline_src:
        os.environ["BENCH_BASELINE_SRC"] = str(args.baseline_src.resolve())
        targets.append("proxy-before")
    if nginx_available():
        if not args.targets:
            targets.append("nginx")
    else:
        notes.append("nginx: not on PATH, column skipped.")
    if importlib.util.find_spec("litellm") is None:
        notes.append("LiteLLM: not importable, column skipped.")
    else:
        notes.append("LiteLLM: importable, but no adapter is implemented in bench/ (column skipped).")
    targets = list(dict.fromkeys(targets))  # a target named twice runs once
    started = time.monotonic()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        workdir = Path(tmp)
        upstream = start_upstream(workdir)
        try:
            runs = _runs(args.scenarios.split(","), params)
            for scenario, sessions in runs:
                for target in targets:
                    print(f"[bench] {scenario} n={sessions} target={target} ...", file=sys.stderr, flush=True)
                    try:
                        rows.append(measure(target, upstream, scenario, sessions, params, workdir))
                    except Exception as exc:  # one failed run must not lose the others
                        rows.append(
                            {
                                "target": target,
                                "scenario": scenario,
                                "sessions": sessions,
                                "error": f"{type(exc).__name__}: {exc}"[:300],
                            }
                        )
        finally:
            upstream.stop()
    meta = report.machine(quick=args.quick, params=params, targets=targets, notes=notes)
    meta["total_s"] = round(time.monotonic() - started, 1)
    markdown = report.render(rows, meta)
    print(markdown)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.md").write_text(markdown)
    report.write_json(args.out / "latest.json", rows, meta)
    return 1 if any("error" in r for r in rows) else 0


def _runs(scenarios: list[str], params: dict[str, Any]) -> list[tuple[str, int]]:
    runs: list[tuple[str, int]] = []
    for scenario in scenarios:
        if scenario == "voice":
            runs += [("voice", n) for n in params["voice_n"]]
        elif scenario == "burst":
            runs.append(("burst", 1))
        elif scenario == "idle":
            runs.append(("idle", params["idle"]))
    return runs

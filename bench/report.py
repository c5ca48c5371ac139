"""Markdown and JSON reports of the benchmark rows."""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path
from typing import Any

import websockets

from bench.procstat import machine_info

GO_DELAY_S = 0.2  # the workers start 0.2 s after "go" (see run.measure)


def machine(*, quick: bool, params: dict[str, Any], targets: list[str], notes: list[str]) -> dict[str, Any]:
    info = machine_info()
    return {
        **info,
        "python": platform.python_version(),
        "websockets": websockets.__version__,
        "loop": "stdlib asyncio for bare relay and proxy (the proxy's own choice); "
        "uvloop for the load generator and the bench upstream",
        "quick": quick,
        "params": params,
        "targets": targets,
        "notes": notes,
        "argv": sys.argv,
    }


def derive(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add frames/s, CPU per 1k frames, added latency vs direct, RSS per session."""
    direct = {(r["scenario"], r["sessions"]): r for r in rows if r["target"] == "direct" and "error" not in r}
    for r in rows:
        if "error" in r:
            continue
        if r["scenario"] != "idle":
            frames = r["sent"] + r["received"]
            active = max(r["client_elapsed_s"] - GO_DELAY_S, 1e-9)
            r["frames"] = frames
            r["frames_per_s"] = frames / active
            cpu = r["cpu_s"]
            r["relay_cpu_s_per_1k"] = (
                cpu["relay"] / frames * 1000 if cpu["relay"] is not None and frames else None
            )
            for side in ("relay", "upstream", "clients"):
                r[f"{side}_cpu_pct"] = cpu[side] / r["window_s"] * 100 if cpu[side] is not None else None
            base = direct.get((r["scenario"], r["sessions"]))
            for p in ("p50", "p99"):
                ok = base is not None and r[f"{p}_ms"] is not None and base[f"{p}_ms"] is not None
                r[f"added_{p}_ms"] = r[f"{p}_ms"] - base[f"{p}_ms"] if ok else None  # type: ignore[index]
        if "rss_kib" in r and r.get("connected"):
            r["rss_per_session_kib"] = (r["rss_kib"] - r["base_rss_kib"]) / r["connected"]
    return rows


def _f(value: Any, fmt: str = "{:.2f}") -> str:
    return "—" if value is None else fmt.format(value)


def render(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    rows = derive(rows)
    lines = [
        "# Realtime proxy benchmark",
        "",
        f"Machine: {meta['cpu_model']}, {meta['cores']} cores, Python {meta['python']}, "
        f"websockets {meta['websockets']}, loop: {meta['loop']}. "
        f"{'QUICK run' if meta['quick'] else 'Full run'}: {meta['params']}, "
        f"total {meta.get('total_s', '?')} s.",
        "",
        "RTT = client-measured round trip (append -> upstream -> delta) over loopback; added = target "
        "percentile minus the direct percentile of the same scenario. Frames = both directions. "
        "CPU = utime+stime of the relay process over the measurement window (/proc/<pid>/stat).",
        "",
    ]
    lines += _traffic_table(rows)
    lines += _idle_table(rows)
    lines += _ratio_table(rows)
    errors = [r for r in rows if "error" in r]
    if errors:
        lines += ["", "## Failed runs", ""]
        lines += [f"- {r['scenario']} n={r['sessions']} {r['target']}: {r['error']}" for r in errors]
    if meta["notes"]:
        lines += ["", "## Notes", "", *[f"- {n}" for n in meta["notes"]]]
    return "\n".join(lines) + "\n"


def _traffic_table(rows: list[dict[str, Any]]) -> list[str]:
    out = [
        "## Voice sessions and burst",
        "",
        "| scenario | target | sessions | frames/s | RTT p50 ms | RTT p99 ms | added p50 ms | added p99 ms "
        "| relay CPU s/1k frames | relay CPU % | upstream CPU % | load-gen CPU % | peak RSS MiB "
        "| RSS/session KiB | missing after 5 s drain / duplicated / out-of-order / altered | fell behind "
        "| min rate/s | max send lag ms |",
        "|" + "---|" * 18,
    ]
    for r in rows:
        if r["scenario"] == "idle" or "error" in r:
            continue
        rate = _f(r["min_rate"], "{:.1f}") if r["scenario"] == "voice" else "—"
        hwm = r.get("hwm_kib")
        cells = [
            r["scenario"],
            r["target"],
            f"{r['connected']}/{r['sessions']}",
            _f(r["frames_per_s"], "{:,.0f}"),
            _f(r["p50_ms"]),
            _f(r["p99_ms"]),
            _f(r.get("added_p50_ms")),
            _f(r.get("added_p99_ms")),
            _f(r["relay_cpu_s_per_1k"], "{:.4f}"),
            _f(r["relay_cpu_pct"], "{:.0f}"),
            _f(r["upstream_cpu_pct"], "{:.0f}"),
            _f(r["clients_cpu_pct"], "{:.0f}"),
            _f(hwm / 1024 if hwm else None, "{:.1f}"),
            _f(r.get("rss_per_session_kib"), "{:.1f}"),
            f"{r['lost']} / {r.get('duplicated', 0)} / {r['out_of_order']} / {r['corrupt']}",
            str(r["fell_behind"]),
            rate,
            _f(r["max_late_ms"], "{:.0f}"),
        ]
        out.append("| " + " | ".join(cells) + " |")
    return out


def _idle_table(rows: list[dict[str, Any]]) -> list[str]:
    idle = [r for r in rows if r["scenario"] == "idle" and "error" not in r]
    if not idle:
        return []
    out = [
        "",
        "## Idle sessions (memory)",
        "",
        "| target | connected | RSS before MiB | RSS after MiB | peak RSS MiB | RSS/session KiB "
        "| connect errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in idle:
        if "rss_kib" not in r:
            n_errors = len(r["connect_errors"])
            out.append(f"| {r['target']} | {r['connected']}/{r['sessions']} | — | — | — | — | {n_errors} |")
            continue
        out.append(
            f"| {r['target']} | {r['connected']}/{r['sessions']} | {r['base_rss_kib'] / 1024:.1f} "
            f"| {r['rss_kib'] / 1024:.1f} | {r['hwm_kib'] / 1024:.1f} "
            f"| {_f(r.get('rss_per_session_kib'), '{:.1f}')} "
            f"| {len(r['connect_errors'])} |"
        )
    return out


def _ratio_table(rows: list[dict[str, Any]]) -> list[str]:
    """Every relay against the bare asyncio relay of the same run (same scenario and sessions)."""
    ok = {(r["scenario"], r["sessions"], r["target"]): r for r in rows if "error" not in r}
    out = [
        "",
        "## Against the bare asyncio relay (same run)",
        "",
        "| scenario | sessions | target | CPU per frame vs bare | added p99 ms (bare) "
        "| RSS per session vs bare | voice: added p99 < 20 ms, none behind |",
        "|---|---|---|---|---|---|---|",
    ]
    for (scenario, sessions, target), row in ok.items():
        bare = ok.get((scenario, sessions, "bare"))
        if target in ("bare", "direct") or bare is None:
            continue
        held = "—"
        if scenario == "voice" and row.get("added_p99_ms") is not None:
            held = "yes" if row["added_p99_ms"] < 20 and not row["fell_behind"] else "no"
        out.append(
            f"| {scenario} | {sessions} | {target} "
            f"| {_ratio(row.get('relay_cpu_s_per_1k'), bare.get('relay_cpu_s_per_1k'))} "
            f"| {_f(row.get('added_p99_ms'))} ({_f(bare.get('added_p99_ms'))}) "
            f"| {_ratio(row.get('rss_per_session_kib'), bare.get('rss_per_session_kib'))} | {held} |"
        )
    return out


def _ratio(a: float | None, b: float | None) -> str:
    return "—" if a is None or b is None or b <= 0 else f"{a / b:.2f}x"


def write_json(path: Path, rows: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    path.write_text(json.dumps({"machine": meta, "runs": derive(rows)}, indent=2, default=str) + "\n")

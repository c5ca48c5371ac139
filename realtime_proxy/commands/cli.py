"""Command line: `realtime-proxy [flags]` runs the proxy; `realtime-proxy lint FILE` checks events."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import textwrap
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from realtime_proxy import __version__
from realtime_proxy.observe.logs import configure_logging, get_logger
from realtime_proxy.settings import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from realtime_proxy.commands.worker_link import WorkerLink

EPILOG = """commands:
  lint FILE             check recorded or captured client events offline, without a network;
                        see `realtime-proxy lint --help`
  rules                 the rule catalogue: what each rule prevents, where, and its evidence
  probe                 which rules each model still needs (OPENAI_API_KEY; throwaway sessions)

tracing (optional: pip install -e '.[otel]'):
  OTEL_EXPORTER_OTLP_ENDPOINT   export one span per session and per response over OTLP/HTTP
  OTEL_SERVICE_NAME             service name of the spans (default realtime-repair-proxy)

exit codes: 0 stopped by SIGTERM/SIGINT, 1 start-up failed (port, TLS, key file), 2 bad configuration
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="realtime-proxy",
        usage="%(prog)s [options]\n       %(prog)s lint FILE [--format {text,json}] [--config PATH]"
        "\n       %(prog)s rules [--format {text,json,markdown}]\n       %(prog)s probe [options]",
        description=textwrap.fill(
            "Transparent WebSocket proxy for the OpenAI Realtime API that repairs risky client "
            "events. Every setting can also come from REALTIME_PROXY_<NAME> "
            "(nested: REALTIME_PROXY_RETRY__MAX_ATTEMPTS). "
            "Precedence: flag > environment > config file > default.",
            88,
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"realtime-proxy {__version__}")
    parser.add_argument("--config", metavar="PATH", help="TOML config file (see config/proxy.toml)")
    parser.add_argument("--host", help="listen address (default 0.0.0.0)")
    parser.add_argument("--port", type=int, help="listen port (default 8080)")
    parser.add_argument("--upstream-url", help="upstream base URL (default wss://api.openai.com)")
    parser.add_argument("--metrics-port", type=int, help="port of /metrics, /healthz, /readyz (default 9464)")
    parser.add_argument(
        "--log-format", choices=["auto", "json", "console"], help="default: json, console on a TTY"
    )
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    parser.add_argument(
        "--fake-upstream",
        action="store_true",
        default=None,
        help="serve a simulated Realtime API in-process instead of a real upstream",
    )
    parser.add_argument(
        "--fake-upstream-latency",
        type=float,
        metavar="SECONDS",
        help="with --fake-upstream: time from response.create to response.created (default 0)",
    )
    for flag, kind, metavar, text in (
        ("drop-after", int, "N", "drop each upstream connection after N responses"),
        ("session-seconds", float, "SECONDS", "end each session like the 60-minute cap after SECONDS"),
        ("fail-handshakes", int, "N", "refuse the first N upstream handshakes with 503"),
        ("fail-in-band", int, "N", "fail the first N in-band responses with server_error"),
    ):
        parser.add_argument(
            f"--fake-upstream-{flag}", type=kind, metavar=metavar, help=f"with --fake-upstream: {text}"
        )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        default=None,
        help="run rules and report rewrites, but forward the original events",
    )
    parser.add_argument("--tls-cert", help="PEM certificate: serve wss:// to clients")
    parser.add_argument("--tls-key", help="PEM private key for --tls-cert")
    parser.add_argument(
        "--workers", type=int, help="processes sharing the port (default 0: one per available CPU)"
    )
    parser.add_argument("--record-dir", help="write each session's client events as redacted JSONL here")
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(sys.argv[1:] if argv is None else argv)
    except BrokenPipeError:
        # The reader went away (`realtime-proxy rules | head -1`): not an error worth a traceback.
        # stdout goes to /dev/null so the interpreter's final flush cannot raise again; 141 is what a
        # process killed by SIGPIPE reports in a shell.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _main(argv: list[str]) -> int:
    if argv and argv[0] == "lint":
        from realtime_proxy.commands.lint import main as lint_main

        return lint_main(argv[1:])
    if argv and argv[0] == "rules":
        from realtime_proxy.commands.catalogue import main as rules_main

        return rules_main(argv[1:])
    if argv and argv[0] == "probe":
        from realtime_proxy.commands.probe import main as probe_main

        return probe_main(argv[1:])
    from realtime_proxy.commands.worker_link import WorkerLink

    link = WorkerLink.from_env(os.environ)  # set when a supervisor started this process
    if link is not None:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a terminal's hangup: the supervisor decides
        link.die_with_supervisor()
    args = build_parser().parse_args(argv)
    flags = {k: v for k, v in vars(args).items() if k != "config"}
    try:
        settings = load_settings(args.config, flags=flags)
    except ConfigError as exc:
        print(f"realtime-proxy: {exc}", file=sys.stderr)
        return 2
    static = {"worker": link.index} if link is not None else None
    configure_logging(log_format=settings.log_format, level=settings.log_level, static=static)
    for message in settings.deprecations if link is None else ():  # said once, by the supervisor
        get_logger().warning("config_deprecated", message=message)
    try:
        return _run_loop(settings.event_loop, _serve(settings, argv, link))
    except KeyboardInterrupt:
        return 0
    except (ValueError, OSError, RuntimeError) as exc:  # bad key file, port in use, bad TLS, workers
        get_logger().error("startup_failed", error=str(exc))
        return 1


def _run_loop(choice: str, main_coroutine: Coroutine[Any, Any, int]) -> int:
    """uvloop when installed (the `fast` extra) or asked for: the benchmark measured about a quarter
    less CPU per frame with it; stdlib asyncio otherwise."""
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                main_coroutine.close()
                raise ValueError(
                    "event_loop = 'uvloop' but uvloop is not installed (pip install '.[fast]')"
                ) from None
        else:
            return uvloop.run(main_coroutine)
    return asyncio.run(main_coroutine)


async def _serve(settings: Settings, argv: list[str], link: WorkerLink | None) -> int:
    from realtime_proxy.commands.serve import serve
    from realtime_proxy.commands.workers import supervise, worker_count

    count = worker_count(settings)
    if count > 1:
        return await supervise(settings, count, argv)
    return await serve(settings, link)

"""Whether to trace, decided once at start-up from the standard OpenTelemetry environment.

Tracing is on only when the `otel` extra is installed and an OTLP endpoint is configured
(`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), and neither
`OTEL_SDK_DISABLED=true` nor `OTEL_TRACES_EXPORTER=none` says otherwise. Otherwise nothing of
OpenTelemetry is imported and every session's trace is None: the observer skips its hooks and the
per-frame path is the same code as without tracing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from realtime_proxy.observe.otel import Tracing

log = structlog.get_logger("realtime_proxy")

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def tracing_wanted(environ: Mapping[str, str]) -> bool:
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return any(environ.get(name) for name in ENDPOINT_VARIABLES)


def tracing_from_environment(environ: Mapping[str, str]) -> Tracing | None:
    """A tracer exporting over OTLP, or None when tracing is not configured or not installed."""
    if not tracing_wanted(environ):
        return None
    try:
        from realtime_proxy.observe.otel import Tracing
    except ImportError:
        log.warning("tracing_unavailable", reason="install realtime-repair-proxy[otel] to export traces")
        return None
    return Tracing.from_environment(environ)

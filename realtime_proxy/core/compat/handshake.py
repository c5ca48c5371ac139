"""Detecting a beta-shaped client at the WebSocket handshake, and hiding it from upstream.

The API closes a socket opened with `OpenAI-Beta: realtime=v1` or the subprotocol
`openai-beta.realtime-v1` (error `beta_api_shape_disabled`, close 4000), so the proxy
remembers the client is beta-shaped and opens the upstream socket without those markers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

BETA_HEADER = "openai-beta"
BETA_SUBPROTOCOL = "openai-beta.realtime-v1"
_BETA_HEADER_VALUE = "realtime=v1"


def _flags(value: str) -> list[str]:
    # The header may list several flags ("realtime=v1, assistants=v2").
    return [flag.strip() for flag in value.split(",") if flag.strip()]


def _is_beta_flag(flag: str) -> bool:
    return flag.replace(" ", "").lower() == _BETA_HEADER_VALUE


def _is_beta_header_value(value: str) -> bool:
    return any(_is_beta_flag(flag) for flag in _flags(value))


def _beta_header_keys(headers: Mapping[str, str]) -> list[str]:
    return [key for key in headers if key.lower() == BETA_HEADER]


def is_beta_handshake(headers: Mapping[str, str], subprotocols: Sequence[str]) -> bool:
    """True when the client asked for the beta API shape by header or subprotocol."""
    if any(_is_beta_header_value(headers[key]) for key in _beta_header_keys(headers)):
        return True
    return any(protocol.strip().lower() == BETA_SUBPROTOCOL for protocol in subprotocols)


def strip_beta_markers(headers: dict[str, str], subprotocols: list[str]) -> tuple[dict[str, str], list[str]]:
    """Copies of the handshake headers and subprotocols without the beta header / subprotocol."""
    kept_headers: dict[str, str] = {}
    for key, value in headers.items():
        if key.lower() != BETA_HEADER:
            kept_headers[key] = value
            continue
        # Keep unrelated beta flags; drop the header only when nothing else is left.
        other_flags = [flag for flag in _flags(value) if not _is_beta_flag(flag)]
        if other_flags:
            kept_headers[key] = ", ".join(other_flags)
    kept_protocols = [p for p in subprotocols if p.strip().lower() != BETA_SUBPROTOCOL]
    return kept_headers, kept_protocols

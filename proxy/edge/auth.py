"""Admission of client handshakes: auth modes and the Origin allow-list.

`passthrough` forwards the client's credentials untouched. `inject` makes the proxy the only holder
of the upstream key: clients present a proxy token (Bearer header, or the browser subprotocol),
checked against SHA-256 digests in constant time, and the real key is added on the upstream leg only.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from websockets.datastructures import Headers

from proxy.ops.settings import AuthSettings

KEY_SUBPROTOCOL = "openai-insecure-api-key."
_CREDENTIAL_HEADERS = ("authorization", "api-key")


class AdmissionRefused(Exception):
    def __init__(self, status: int, code: str, message: str, result: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.result = status, code, message, result


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def load_upstream_key(settings: AuthSettings) -> str:
    """The real upstream key for inject mode: from a file or the environment, never from config."""
    if settings.upstream_key_file:
        key = Path(settings.upstream_key_file).read_text().strip()
    else:
        key = os.environ.get(settings.upstream_key_env, "").strip()
    if not key:
        source = settings.upstream_key_file or f"${settings.upstream_key_env}"
        raise ValueError(f"auth.mode = 'inject' needs the upstream key in {source}")
    return key


def presented_token(headers: Headers, subprotocols: list[str]) -> str | None:
    authorization = headers.get("Authorization", "")
    if authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    for offered in subprotocols:
        if offered.startswith(KEY_SUBPROTOCOL):
            return offered[len(KEY_SUBPROTOCOL) :]
    return None


class Admission:
    def __init__(self, settings: AuthSettings, *, upstream_key: str | None = None) -> None:
        self.settings = settings
        self.inject = settings.mode == "inject"
        self.upstream_key = (upstream_key or load_upstream_key(settings)) if self.inject else ""
        self.digests = tuple(bytes.fromhex(d) for d in settings.token_sha256)
        if self.inject and not self.digests:
            raise ValueError("auth.mode = 'inject' needs at least one auth.token_sha256 entry")
        self.origins = frozenset(o.rstrip("/") for o in settings.allowed_origins)

    def admit(self, headers: Headers, subprotocols: list[str]) -> tuple[Headers, list[str]]:
        """The headers and subprotocols to use upstream, or AdmissionRefused."""
        origin = headers.get("Origin")
        if self.origins and origin is not None and origin.rstrip("/") not in self.origins:
            raise AdmissionRefused(
                403, "origin_not_allowed", "This origin may not use the proxy.", "rejected_origin"
            )
        if not self.inject:
            return headers, subprotocols
        token = presented_token(headers, subprotocols)
        if token is None or not self._valid(token):
            raise AdmissionRefused(401, "invalid_api_key", "Missing or invalid proxy token.", "rejected_auth")
        upstream = Headers([(k, v) for k, v in headers.raw_items() if k.lower() not in _CREDENTIAL_HEADERS])
        if self.settings.upstream_key_header == "api-key":
            upstream["api-key"] = self.upstream_key
        else:
            upstream["Authorization"] = f"Bearer {self.upstream_key}"
        kept = [s for s in subprotocols if not s.startswith(KEY_SUBPROTOCOL)]
        return upstream, kept

    def _valid(self, token: str) -> bool:
        digest = hashlib.sha256(token.encode()).digest()
        # Compare against every digest so timing does not reveal which (if any) matched.
        matched = False
        for expected in self.digests:
            matched |= hmac.compare_digest(digest, expected)
        return matched

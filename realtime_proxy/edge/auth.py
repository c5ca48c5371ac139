"""Admission of client handshakes: auth modes and the Origin allow-list.

`passthrough` forwards the client's credentials untouched. `inject` makes the proxy the only holder
of the upstream key: clients present a proxy token (Bearer header, or the browser subprotocol),
checked against SHA-256 digests in constant time, and the real key is added on the upstream leg only.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from pathlib import Path

from websockets.datastructures import Headers

from realtime_proxy.settings import AuthSettings

KEY_SUBPROTOCOL = "openai-insecure-api-key."
_CREDENTIAL_HEADERS = ("authorization", "api-key")
# Headers that must appear at most once: with two, which one counts depends on who reads them.
_SINGLE_HEADERS = ("authorization", "api-key", "proxy-authorization", "origin")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 token
# An API key as the API echoes it in refusals: whole, or masked (`sk-abc*****wxyz`).
_KEY_LIKE = re.compile(r"\b(?:sk|ek)[-_][A-Za-z0-9_\-*]{3,}|[A-Za-z0-9_\-]{0,8}\*{4,}[A-Za-z0-9_\-]{0,8}")


# A Live session's sideband and fork sockets (`/v1/live/sessions/{id}/attach|fork`): allowed in
# inject mode wherever their session's path is (the ids vary, an exact list cannot name them).
_LIVE_SUB_SOCKET = re.compile(r"(.*/live/sessions)/[A-Za-z0-9_\-]+/(?:attach|fork)/?")


def _inject_path(path: str) -> str:
    """The path whose `auth.inject_paths` entry admits `path`: itself, or a Live sub-socket's session path."""
    match = _LIVE_SUB_SOCKET.fullmatch(path)
    return match.group(1) if match else path


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


def check_headers(headers: Headers, subprotocols: list[str]) -> None:
    """Refuse (400) a handshake whose headers cannot be read one way only: a credential or Origin
    header given twice, or any value with bytes outside ASCII (websockets hands them over as
    surrogates; forwarding them failed with a 500). Names the header, never its value."""
    for name in _SINGLE_HEADERS:
        if len(headers.get_all(name)) > 1:
            raise AdmissionRefused(400, "invalid_header", f"Duplicate {name} header.", "rejected_header")
    for name, value in headers.raw_items():
        if not value.isascii():
            message = f"The {name.lower()} header has characters outside ASCII."
            raise AdmissionRefused(400, "invalid_header", message, "rejected_header")
    # Each offered subprotocol must be an HTTP token: the upstream client refuses others with an
    # exception quoting the value, which may be a key (`openai-insecure-api-key.<key>`).
    if not all(_TOKEN.fullmatch(offered) for offered in subprotocols):
        message = "The sec-websocket-protocol header offers a name that is not a token."
        raise AdmissionRefused(400, "invalid_header", message, "rejected_header")


def malformed_headers(headers: Headers) -> AdmissionRefused | None:
    """check_headers for a raw handshake, to run before websockets' own validation (whose plain-text
    400 quotes the offending value back, e.g. a key subprotocol)."""
    offered = [
        p.strip() for v in headers.get_all("Sec-WebSocket-Protocol") for p in v.split(",") if p.strip()
    ]
    try:
        check_headers(headers, offered)
    except AdmissionRefused as refused:
        return refused
    return None


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
        self.inject_paths = frozenset(settings.inject_paths)

    def admit(
        self, headers: Headers, subprotocols: list[str], path: str | None = "/v1/realtime"
    ) -> tuple[Headers, list[str]]:
        """The headers and subprotocols to use upstream, or AdmissionRefused (before any upstream
        contact). `path` is the client's request target; in inject mode only `auth.inject_paths` may
        carry the key: `/v1/files` with a valid proxy token would otherwise spend it elsewhere.
        None: the caller has already checked where the key may go (plain HTTP: `http.inject_routes`)."""
        check_headers(headers, subprotocols)
        origin = headers.get("Origin")
        if self.origins and origin is not None and origin.rstrip("/") not in self.origins:
            raise AdmissionRefused(
                403, "origin_not_allowed", "This origin may not use the proxy.", "rejected_origin"
            )
        if not self.inject:
            return headers, subprotocols
        if path is not None and _inject_path(path.partition("?")[0]) not in self.inject_paths:
            raise AdmissionRefused(
                403, "path_not_allowed", "This path may not be used through the proxy.", "rejected_path"
            )
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

    def refusal_body(self, body: bytes) -> bytes:
        """An upstream refusal's body as the client may see it: in inject mode the key is the proxy's,
        and the API echoes keys (masked, with their last characters) in its 401 bodies."""
        if not self.inject:
            return body  # the client's own credentials
        text = body.decode("utf-8", "replace").replace(self.upstream_key, "[REDACTED]")
        return _KEY_LIKE.sub("[REDACTED]", text).encode()

    def _valid(self, token: str) -> bool:
        digest = hashlib.sha256(token.encode()).digest()
        # Compare against every digest so timing does not reveal which (if any) matched.
        matched = False
        for expected in self.digests:
            matched |= hmac.compare_digest(digest, expected)
        return matched

"""Settings: one validated model, filled from defaults < TOML file < environment < flags.

Every nested model forbids unknown keys, so a typo in the config file is a start-up error
that names the key instead of a silently ignored setting.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from realtime_proxy.observe.cost import DEFAULT_PRICES, ModelPrice
from realtime_proxy.observe.cost_live import LivePrice, default_live_prices

ENV_PREFIX = "REALTIME_PROXY_"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuleToggle(_Strict):
    enabled: bool = True


class RulesSettings(_Strict):
    model_config = ConfigDict(extra="allow", frozen=True)

    mode: Literal["repair", "observe"] = "repair"
    # Deprecated: in-band responses are serialised by default now (`[orchestration]`).
    queue_in_band_responses: bool = False

    @model_validator(mode="after")
    def _known_rules_only(self) -> RulesSettings:
        from realtime_proxy.core.rules import (
            ALL_RULES,  # late import: settings must load even for `lint --help`
        )

        known = {rule.name for rule in ALL_RULES}
        for name, value in (self.model_extra or {}).items():
            if name not in known:
                raise ValueError(f"unknown rule {name!r} (known: {', '.join(sorted(known))})")
            # Validate the table itself; stored back as a RuleToggle.
            self.model_extra[name] = RuleToggle.model_validate(value)  # type: ignore[index]
        return self

    def enabled_overrides(self) -> dict[str, bool]:
        return {name: toggle.enabled for name, toggle in (self.model_extra or {}).items()}


class OrchestrationSettings(_Strict):
    """Turn-taking on the upstream leg (docs/turn-taking.md). `observe` logs and counts what would
    be held or absorbed and forwards everything unchanged; so does `--dry-run`."""

    mode: Literal["repair", "observe", "off"] = "repair"
    serialise_responses: bool = True
    coalesce_tool_calls: bool = True
    hold_early_cancels: bool = True
    max_held_creates: int = Field(8, ge=1, le=1000)
    tool_output_timeout: float = Field(10.0, gt=0)


QUEUE_DEPRECATED = (
    "rules.queue_in_band_responses is deprecated and has no effect of its own: in-band responses "
    "are serialised by default ([orchestration] serialise_responses = true); to turn turn-taking "
    'off, set [orchestration] mode = "off". Remove the key.'
)


class ModelsSettings(_Strict):
    """`[models]`: `aliases` maps a model name in the handshake's `model=` query to the one opened
    upstream (e.g. a retired model to its successor); `rules.<model>` switches rules for
    sessions of that model (as session.created reports it, else as the handshake asked)."""

    aliases: dict[str, str] = Field(default_factory=dict)
    rules: dict[str, dict[str, bool]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_rules_only(self) -> ModelsSettings:
        from realtime_proxy.core.rules import ALL_RULES

        known = {rule.name for rule in ALL_RULES}
        for model, switches in self.rules.items():
            unknown = sorted(set(switches) - known)
            if unknown:
                raise ValueError(f"models.rules.{model}: unknown rule(s) {', '.join(unknown)}")
        return self


class RetrySettings(_Strict):
    enabled: bool = True
    max_attempts: int = Field(3, ge=1, le=10)
    backoff_base: float = Field(0.5, gt=0)
    backoff_cap: float = Field(4.0, gt=0)
    deadline: float = Field(10.0, gt=0)
    retry_in_band: bool = False
    escalate_rules: tuple[str, ...] = ("tool_choice_object",)


class HandshakeRetrySettings(_Strict):
    """`[handshake_retry]`: an upstream handshake refused with 5xx/429, unreachable or timed out is
    tried again (full-jitter backoff, at least `Retry-After`) before the client gets its answer."""

    enabled: bool = True
    max_attempts: int = Field(3, ge=1, le=10)  # attempts in all, the first included
    backoff_base: float = Field(0.25, gt=0)
    backoff_cap: float = Field(2.0, gt=0)
    budget: float = Field(5.0, gt=0)  # seconds all attempts and waits must fit in


class ContinuitySettings(_Strict):
    """`[continuity]`: when the upstream drops or nears the 60-minute cap, open a new upstream
    session and replay what the server confirmed; the client keeps its socket."""

    mode: Literal["resume", "off"] = "resume"
    max_attempts: int = Field(3, ge=1, le=10)  # handshakes per resumption (handshake_retry timing)
    max_resumptions: int = Field(5, ge=0, le=100)  # per client session; past it the client is closed
    rollover_age: float = Field(3300.0, ge=0)  # seconds: move at the next turn boundary; 0 = never
    replay_timeout: float = Field(10.0, gt=0)  # for the new session to confirm the replay
    max_mirror_bytes: int = Field(1024 * 1024, ge=1024)  # per session; oldest items dropped past it
    max_held_client_bytes: int = Field(4 * 1024 * 1024, ge=1024)  # client frames held while resuming


class RedriveSettings(_Strict):
    """`[redrive]`: an in-band response that failed with `server_error` before producing anything
    is hidden from the client and created again (not on WebRTC/SIP sidebands)."""

    enabled: bool = True
    max_attempts: int = Field(3, ge=2, le=10)  # attempts in all, the failed first one included
    backoff_base: float = Field(0.25, gt=0)
    backoff_cap: float = Field(2.0, gt=0)


class AuthSettings(_Strict):
    mode: Literal["passthrough", "inject"] = "passthrough"
    # SHA-256 hex digests of the tokens clients present in inject mode (never the tokens).
    token_sha256: tuple[str, ...] = ()
    # Where inject mode reads the real upstream key: an environment variable or a file.
    upstream_key_env: str = "OPENAI_API_KEY"
    upstream_key_file: str = ""
    # How the injected key is presented upstream: OpenAI uses Authorization, Azure `api-key`.
    upstream_key_header: Literal["authorization", "api-key"] = "authorization"
    allowed_origins: tuple[str, ...] = ()
    # inject: the only paths (query aside, exact match) whose handshakes may carry the injected key.
    inject_paths: tuple[str, ...] = (
        "/v1/realtime",
        "/openai/v1/realtime",
        "/openai/realtime",
        "/v1/live/sessions",
    )

    @field_validator("token_sha256")
    @classmethod
    def _hex_digests(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for digest in value:
            if len(digest) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digest):
                raise ValueError("each token_sha256 entry must be a 64-character hex SHA-256 digest")
        return tuple(d.lower() for d in value)


HTTP_ROUTE_CLASSES = (
    "realtime_client_secrets",
    "translations_client_secrets",
    "realtime_calls",
    "realtime_call_action",
    "live_sessions",
    "live_session_action",
    "other",
)


class HttpSettings(_Strict):
    """Plain HTTP on the client port: pass-through to the upstream, repairs on the Realtime routes."""

    # Route classes that may carry the injected key in auth.mode = "inject" ("other": every route).
    inject_routes: tuple[str, ...] = (
        "realtime_client_secrets",
        "translations_client_secrets",
        "realtime_calls",
        "realtime_call_action",
        "live_sessions",
        "live_session_action",
    )
    max_repair_body_bytes: int = Field(1024 * 1024, ge=1024)  # session-config routes are read whole
    max_header_bytes: int = Field(16 * 1024, ge=1024)  # as the listener allows for the first request
    connect_timeout: float = Field(10.0, gt=0)
    upstream_read_timeout: float = Field(600.0, gt=0)  # between upstream bytes (SSE can idle)
    client_idle_timeout: float = Field(60.0, gt=0)  # a stalled request body or a client not reading
    header_timeout: float = Field(30.0, gt=0)  # from the first byte of a request to its complete head
    keepalive_timeout: float = Field(75.0, gt=0)  # idle client connection between requests
    max_upstream_connections: int = Field(200, ge=1)
    # Admission: requests forwarded upstream at once (per worker); the rest wait up to
    # `queue_timeout` seconds for a slot, then get 503 with Retry-After.
    max_concurrent_requests: int = Field(64, ge=1)
    queue_timeout: float = Field(5.0, ge=0)

    @field_validator("inject_routes")
    @classmethod
    def _known_routes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(HTTP_ROUTE_CLASSES))
        if unknown:
            raise ValueError(f"unknown route class(es) {unknown} (known: {', '.join(HTTP_ROUTE_CLASSES)})")
        return value


class CompatSettings(_Strict):
    beta_clients: Literal["translate", "reject", "passthrough"] = "translate"


class Settings(_Strict):
    host: str = "0.0.0.0"
    port: int = Field(8080, ge=0, le=65535)
    upstream_url: str = "wss://api.openai.com"
    metrics_port: int = Field(9464, ge=0, le=65535)
    metrics_host: str = "0.0.0.0"
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_event_types: bool = False
    dry_run: bool = False
    fake_upstream: bool = False
    fake_upstream_latency: float = Field(0.0, ge=0, le=30)  # seconds to each simulated response.created
    # Simulated upstream failures (issue 25), for demos and end-to-end tests of recovery.
    fake_upstream_drop_after: int = Field(0, ge=0)  # drop each upstream TCP connection after N responses
    fake_upstream_session_seconds: float = Field(0.0, ge=0)  # session_expired + close 1001 after S s
    fake_upstream_fail_handshakes: int = Field(0, ge=0)  # refuse the first N handshakes: 503, Retry-After 0
    fake_upstream_fail_in_band: int = Field(0, ge=0)  # the first N in-band responses fail (server_error)
    max_frame_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    max_parse_bytes: int = Field(1024 * 1024, ge=1024)  # larger client events go on unparsed, unrepaired
    handshake_timeout: float = Field(10.0, gt=0)
    ping_interval: float = Field(20.0, ge=0)
    ping_timeout: float = Field(20.0, ge=0)
    shutdown_grace: float = Field(10.0, ge=0)
    max_sessions: int = Field(1000, ge=1)  # the whole proxy: every worker counts in one shared zone
    workers: int = Field(0, ge=0)  # processes sharing the port; 0: one per available CPU (cgroup-aware)
    idle_timeout: float = Field(0.0, ge=0)
    max_session_duration: float = Field(0.0, ge=0)
    max_client_frames_per_second: float = Field(0.0, ge=0)
    max_fragments: int = Field(1024, ge=1)  # per WebSocket message, either leg; more: close 1009
    write_stall_timeout: float = Field(30.0, ge=0)  # a leg not draining what we write: close 1008
    compression: bool = False
    event_loop: Literal["auto", "asyncio", "uvloop"] = "auto"
    upstream_ca_bundle: str = ""
    upstream_tls_verify: bool = True
    tls_cert: str = ""
    tls_key: str = ""
    record_dir: str = ""
    rules: RulesSettings = Field(default_factory=RulesSettings)
    retry: RetrySettings = RetrySettings()
    handshake_retry: HandshakeRetrySettings = Field(default_factory=HandshakeRetrySettings)
    continuity: ContinuitySettings = Field(default_factory=ContinuitySettings)
    redrive: RedriveSettings = Field(default_factory=RedriveSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    compat: CompatSettings = Field(default_factory=CompatSettings)
    orchestration: OrchestrationSettings = Field(default_factory=OrchestrationSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    models: ModelsSettings = Field(default_factory=ModelsSettings)
    # USD per 1M tokens by model; entries given in config replace or add to the shipped defaults.
    prices: dict[str, ModelPrice] = Field(default_factory=lambda: _default_prices())

    # Live: USD per minute of session by model (active, paused); entries replace or add to the defaults.
    live_prices: dict[str, LivePrice] = Field(default_factory=default_live_prices)

    @field_validator("prices", mode="before")
    @classmethod
    def _prices_over_defaults(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        return {**_default_prices(), **value}

    @field_validator("live_prices", mode="before")
    @classmethod
    def _live_prices_over_defaults(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        return {**default_live_prices(), **value}

    @field_validator("upstream_url")
    @classmethod
    def _ws_url(cls, value: str) -> str:
        if not value.startswith(("ws://", "wss://")):
            raise ValueError("must start with ws:// or wss://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("tls_cert and tls_key must be set together")
        return self

    @property
    def rules_observe_only(self) -> bool:
        return self.dry_run or self.rules.mode == "observe"

    @property
    def orchestration_observe_only(self) -> bool:
        return self.dry_run or self.orchestration.mode == "observe"

    @property
    def deprecations(self) -> list[str]:
        """Settings that still load but should go; logged once at start-up."""
        return [QUEUE_DEPRECATED] if "queue_in_band_responses" in self.rules.model_fields_set else []


def _default_prices() -> dict[str, ModelPrice]:
    return {name: ModelPrice(**price) for name, price in DEFAULT_PRICES.items()}


class ConfigError(Exception):
    """A bad setting: the message names the key and is fit to print at start-up."""


def _deep_merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """`REALTIME_PROXY_UPSTREAM_URL` -> upstream_url; `..._RETRY__MAX_ATTEMPTS` -> retry.max_attempts.

    Values stay strings (pydantic coerces them); lists are comma-separated."""
    result: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        value: Any = raw
        if path[-1] in {"token_sha256", "allowed_origins", "escalate_rules", "inject_paths", "inject_routes"}:
            value = [item.strip() for item in raw.split(",") if item.strip()]
        node = result
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return result


def _describe(error: ValidationError, source: str) -> str:
    lines = [f"invalid configuration ({source}):"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "<root>"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown setting"
        lines.append(f"  {key}: {message}")
    return "\n".join(lines)


def load_settings(
    config_path: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Settings:
    """Defaults < file < environment < flags; raises ConfigError naming the bad key."""
    data: dict[str, Any] = {}
    source = "defaults"
    if config_path:
        try:
            data = tomllib.loads(Path(config_path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {config_path}: {exc}") from exc
        source = str(config_path)
        try:
            Settings.model_validate(data)  # the file alone must be valid: errors name the file
        except ValidationError as exc:
            raise ConfigError(_describe(exc, source)) from None
    data = _deep_merge(data, env_overrides(os.environ if environ is None else environ))
    data = _deep_merge(data, {k: v for k, v in (flags or {}).items() if v is not None})
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, "file, environment and flags")) from None

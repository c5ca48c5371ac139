"""Admission of one WebSocket handshake, before any upstream contact: credentials, beta shapes, the
upstream URL and forwarded headers; and the HTTP answer for an upstream handshake that failed."""

from __future__ import annotations

from dataclasses import dataclass

from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from realtime_proxy.core import compat
from realtime_proxy.core.context import SessionContext, upstream_target
from realtime_proxy.core.rules import RuleChain
from realtime_proxy.core.rules.live import LIVE_MODEL_ON_REALTIME, is_live_model, live_model_refusal
from realtime_proxy.edge.auth import Admission, AdmissionRefused
from realtime_proxy.edge.listener import json_response, phrase
from realtime_proxy.edge.target import REFUSAL, normalise_target
from realtime_proxy.edge.upstream import (
    RELAYED_REFUSAL_HEADERS,
    BadRequestTarget,
    UpstreamFailure,
    UpstreamRefused,
    forwarded_headers,
    offered_subprotocols,
    upstream_url,
)
from realtime_proxy.observe.logs import get_logger
from realtime_proxy.observe.metrics import Metrics
from realtime_proxy.settings import Settings

log = get_logger("proxy.server")
BETA_REFUSED = "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API."


@dataclass(frozen=True, slots=True)
class UpstreamPlan:
    url: str
    headers: list[tuple[str, str]]
    subprotocols: list[str]
    beta_client: bool  # translate this client's beta shapes
    context: SessionContext  # route and model, for the rules' scopes
    target: str  # the client's request target, normalised (target.py), before any alias


def admit(
    settings: Settings, admission: Admission, metrics: Metrics, request: Request, chain: RuleChain
) -> Response | UpstreamPlan:
    """The plan for the upstream handshake, or the HTTP refusal to answer the client with."""
    try:
        # What the upstream will be asked for, checked against `auth.inject_paths` and opened.
        target = normalise_target(request.path, strict=admission.inject)
    except BadRequestTarget:
        metrics.handshakes_total.labels("rejected_path").inc()
        return json_response(400, "invalid_request_target", REFUSAL)
    try:
        offered = offered_subprotocols(request.headers)
        headers, subprotocols = admission.admit(request.headers, offered, target)
    except AdmissionRefused as refused:
        metrics.handshakes_total.labels(refused.result).inc()
        return json_response(refused.status, refused.code, refused.message)
    beta = compat.is_beta_handshake({k.lower(): v for k, v in headers.raw_items()}, subprotocols)
    mode = settings.compat.beta_clients
    if beta:
        metrics.beta_sessions_total.labels(mode).inc()
        if mode == "reject":
            metrics.handshakes_total.labels("rejected_beta").inc()
            return json_response(400, "beta_api_shape_disabled", BETA_REFUSED)
    # Where the session is (route, model), for the rules' scopes; model aliases and the
    # transcription handshake repair may change the upstream query (pure, in core.context).
    aliases = settings.models.aliases
    context = chain.session_context(target, aliases)
    live_refusal = live_model_refused(context, chain, metrics)
    if live_refusal is not None:
        return live_refusal
    # A route the proxy does not understand is relayed as the client asked (normalised, as every
    # target is): no beta translation, no alias, no handshake repair.
    translate = beta and mode == "translate" and not context.untouched
    forwarded = forwarded_headers(headers)
    if translate:
        plain, subprotocols = compat.strip_beta_markers(dict(forwarded), subprotocols)
        forwarded = list(plain.items())
    opened = target if context.untouched else upstream_target(target, context, aliases)
    try:
        url = upstream_url(settings.upstream_url, opened)
    except BadRequestTarget:
        return json_response(400, "invalid_request_target", REFUSAL)
    return UpstreamPlan(url, forwarded, subprotocols, translate, context, target)


def live_model_refused(context: SessionContext, chain: RuleChain, metrics: Metrics) -> Response | None:
    """A Live model on the Realtime route: the API refuses it (invalid_model); the proxy answers once,
    naming the Live route (rule live_model_on_realtime). Observe mode only counts and logs it."""
    rule = LIVE_MODEL_ON_REALTIME
    model = context.requested_model
    if not is_live_model(model) or context.route not in rule.routes or not chain.enabled(rule.name, model):
        return None
    assert model is not None
    applied = not chain.observe_only
    log.warning("refusal", rule=rule.name, code="invalid_model", model=model, applied=applied)
    metrics.refusals_total.labels(rule.name).inc()
    if not applied:
        return None
    metrics.handshakes_total.labels("rejected_model").inc()
    return json_response(400, "invalid_model", live_model_refusal(model))


def capacity_refusal(metrics: Metrics) -> Response:
    metrics.handshakes_total.labels("rejected_capacity").inc()
    message = "The proxy is at its session limit; retry later."
    return json_response(503, "proxy_at_capacity", message, error_type="server_error")


def failure_response(failure: UpstreamFailure, admission: Admission) -> Response:
    """A refusal is relayed with its body (and a few safe headers; in inject mode without the key the
    API may quote in it); 502/504 get a JSON body."""
    if isinstance(failure, UpstreamRefused):
        relayed = [(k, v) for k, v in failure.headers.raw_items() if k.lower() in RELAYED_REFUSAL_HEADERS]
        body = admission.refusal_body(failure.body)
        return Response(failure.status, phrase(failure.status), Headers(relayed), body)
    if failure.status == 504:
        message = "The upstream did not answer the handshake in time."
    else:
        message = "The proxy could not reach the upstream."
    return json_response(failure.status, failure.code, message, error_type="server_error")


def handshake_result(failure: UpstreamFailure) -> str:
    """The `upstream_handshakes_total` label of a failed upstream handshake."""
    if isinstance(failure, UpstreamRefused):
        if failure.status in (401, 403, 404, 429):
            return f"refused_{failure.status}"
        return "refused_5xx" if failure.status >= 500 else "refused_4xx"
    return "timeout" if failure.status == 504 else "unreachable"

"""realtime_proxy.api: one catalogue, one builder per error shape, and the same bytes every place
has always sent (the golden bytes below were taken from each builder before they were merged)."""

from __future__ import annotations

import orjson

from realtime_proxy.api.errors import (
    LIVE_NOT_STARTED,
    MESSAGE_TYPE_CODE,
    ApiError,
    error_event,
    http_error_body,
    live_unsupported,
)
from realtime_proxy.api.events import (
    CLIENT_EVENT_TYPES,
    LIVE_CLIENT_EVENT_TYPES,
    LIVE_CLIENT_EVENTS,
    LIVE_SIDEBAND_CLIENT_EVENTS,
    REALTIME_CLIENT_EVENTS,
    SERVER_EVENT_TYPES,
    TRANSLATION_CLIENT_EVENTS,
)
from realtime_proxy.core.repair import refusal_event
from realtime_proxy.edge.http.exchange import error_body
from realtime_proxy.edge.listener import json_response
from realtime_proxy.fake_upstream import http_realtime


def test_proxy_refusal_event_bytes() -> None:
    assert refusal_event("proxy_evt_1", "c1", "invalid_value", "Bad.", "session.x") == (
        '{"type":"error","event_id":"proxy_evt_1","error":{"type":"invalid_request_error",'
        '"code":"invalid_value","message":"Bad.","param":"session.x","event_id":"c1"}}'
    )
    # A client event_id that is not a string is not echoed.
    assert refusal_event("proxy_evt_2", 5, "x", "Bad.", None) == (
        '{"type":"error","event_id":"proxy_evt_2","error":{"type":"invalid_request_error",'
        '"code":"x","message":"Bad.","param":null,"event_id":null}}'
    )


def test_simulator_error_events() -> None:
    error = ApiError("Bad.", code="x", param="p")
    # Realtime: the simulator prepends its own event_id to this.
    assert orjson.dumps(error_event(error, "c1")) == (
        b'{"type":"error","error":{"type":"invalid_request_error","code":"x","message":"Bad.",'
        b'"param":"p","event_id":"c1"}}'
    )
    # Live: `client_event_id` in the error, and echoed at the top only when there is one.
    assert orjson.dumps(error_event(error, "c1", live=True)) == (
        b'{"type":"error","error":{"type":"invalid_request_error","code":"x","message":"Bad.",'
        b'"param":"p","client_event_id":"c1"},"client_event_id":"c1"}'
    )
    assert orjson.dumps(error_event(error, None, live=True)) == (
        b'{"type":"error","error":{"type":"invalid_request_error","code":"x","message":"Bad.",'
        b'"param":"p","client_event_id":null}}'
    )


def test_http_error_bodies_keep_each_place_order() -> None:
    assert http_realtime.error(400, "Bad.", code="x", param="p").body == (
        b'{"error":{"message":"Bad.","type":"invalid_request_error","param":"p","code":"x"}}'
    )
    assert json_response(400, "x", "Bad.").body == (
        b'{"error":{"type":"invalid_request_error","code":"x","message":"Bad.","param":null}}'
    )
    assert json_response(503, "x", "Bad.", error_type="server_error", body=False).body == b""
    assert error_body("Bad.", code=None, error_type="server_error") == (
        b'{"error":{"message":"Bad.","type":"server_error","param":null,"code":null}}'
    )
    assert http_error_body("Bad.", code="invalid_model", param="model", order=MESSAGE_TYPE_CODE) == (
        b'{"error":{"message":"Bad.","type":"invalid_request_error","code":"invalid_model","param":"model"}}'
    )


def test_catalogues() -> None:
    assert len(CLIENT_EVENT_TYPES) == 14 and "transcription_session.update" in CLIENT_EVENT_TYPES
    assert set(REALTIME_CLIENT_EVENTS) | set(TRANSLATION_CLIENT_EVENTS) < CLIENT_EVENT_TYPES
    assert "rate_limits.updated" in SERVER_EVENT_TYPES and "response.create" not in SERVER_EVENT_TYPES
    assert frozenset(LIVE_CLIENT_EVENTS) == LIVE_CLIENT_EVENT_TYPES and len(LIVE_CLIENT_EVENTS) == 15
    assert LIVE_SIDEBAND_CLIENT_EVENTS[-1] == "transport.dtmf.send"
    assert "session.start" not in LIVE_SIDEBAND_CLIENT_EVENTS


def test_live_refusals() -> None:
    error = live_unsupported("response.cancel", ("a", "b"))
    assert (error.code, error.param, error.message) == (
        "invalid_value",
        "type",
        "Invalid value: 'response.cancel'. Supported values are: 'a' and 'b'.",
    )
    assert LIVE_NOT_STARTED.startswith("Send session.start")

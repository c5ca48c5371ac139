"""The [http] settings: route classes checked by name, lists from the environment."""

from __future__ import annotations

import pytest

from realtime_proxy.settings import ConfigError, load_settings


def test_inject_routes_from_the_environment() -> None:
    env = {
        "REALTIME_PROXY_HTTP__INJECT_ROUTES": "other, realtime_calls",
        "REALTIME_PROXY_HTTP__HEADER_TIMEOUT": "5",
    }
    settings = load_settings(None, environ=env)
    assert settings.http.inject_routes == ("other", "realtime_calls")
    assert settings.http.header_timeout == 5.0


def test_unknown_route_class_is_a_start_up_error_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"http\.inject_routes: unknown route class\(es\) \['bogus'\]"):
        load_settings(None, environ={"REALTIME_PROXY_HTTP__INJECT_ROUTES": "bogus"})

"""Cost per response from response.done usage, the price table in settings, the bounded model label."""

from __future__ import annotations

from pathlib import Path

import pytest

from realtime_proxy.fake_upstream.usage import usage
from realtime_proxy.observe.cost import (
    DEFAULT_PRICES,
    OTHER_MODEL,
    ModelPrice,
    SessionCost,
    model_key,
    response_cost,
)
from realtime_proxy.settings import ConfigError, load_settings

PRICE = ModelPrice(
    text_input=4.0,
    text_cached_input=0.4,
    text_output=16.0,
    audio_input=32.0,
    audio_cached_input=0.4,
    audio_output=64.0,
    image_input=5.0,
    image_cached_input=0.5,
)


def test_every_token_kind_at_its_own_price() -> None:
    block = usage(
        input_text=1000,
        cached_text=400,
        input_audio=2000,
        cached_audio=500,
        output_text=100,
        output_audio=300,
    )
    expected = (600 * 4.0 + 400 * 0.4 + 1500 * 32.0 + 500 * 0.4 + 100 * 16.0 + 300 * 64.0) / 1_000_000
    assert response_cost(block, PRICE) == pytest.approx(expected, rel=1e-12)


def test_image_input_and_its_cache() -> None:
    block = usage()
    block["input_token_details"].update(image_tokens=1000)
    block["input_token_details"]["cached_tokens_details"]["image_tokens"] = 200
    assert response_cost(block, PRICE) == pytest.approx((800 * 5.0 + 200 * 0.5) / 1_000_000, rel=1e-12)


@pytest.mark.parametrize("block", [None, "usage", {}, usage(), {"input_token_details": "x"}])
def test_no_usable_usage_costs_nothing(block: object) -> None:
    assert response_cost(block, PRICE) == 0.0


@pytest.mark.parametrize(
    ("model", "key"),
    [
        ("gpt-realtime", "gpt-realtime"),
        ("gpt-realtime-2025-08-28", "gpt-realtime"),
        ("gpt-realtime-mini", "gpt-realtime-mini"),
        ("gpt-realtime-mini-2025-10-06", "gpt-realtime-mini"),
        ("gpt-4o-realtime-preview-2024-12-17", "gpt-4o-realtime-preview"),
        ("gpt-4o-mini-realtime-preview-2024-12-17", "gpt-4o-mini-realtime-preview"),
        ("gpt-realtime-2", "gpt-realtime-2"),
        ("gpt-realtime-2.1-mini", "gpt-realtime-2.1-mini"),
        ("gpt-realtime-experimental", OTHER_MODEL),  # not a dated snapshot of a known model
        ("my-azure-deployment", OTHER_MODEL),
        (None, OTHER_MODEL),
        ("", OTHER_MODEL),
    ],
)
def test_model_label_is_bounded_to_the_table(model: str | None, key: str) -> None:
    assert model_key(model, DEFAULT_PRICES) == key


def test_session_cost_adds_up_and_prices_unknown_models_at_zero() -> None:
    table = {"gpt-realtime": PRICE}
    known = SessionCost("gpt-realtime-2025-08-28", table)
    rows = [("input", "text", False, 1_000_000), ("output", "audio", False, 10)]
    assert known.label == "gpt-realtime"
    assert known.add(rows) == pytest.approx(4.0 + 10 * 64.0 / 1_000_000)
    assert known.add(rows) == pytest.approx(4.0 + 10 * 64.0 / 1_000_000)
    assert known.total_usd == pytest.approx(2 * (4.0 + 10 * 64.0 / 1_000_000))
    unknown = SessionCost("my-deployment", table)
    assert (unknown.label, unknown.add(rows), unknown.total_usd) == (OTHER_MODEL, 0.0, 0.0)


def test_shipped_defaults_cover_the_realtime_models() -> None:
    settings = load_settings(None, environ={})
    assert (
        set(settings.prices)
        == set(DEFAULT_PRICES)
        >= {
            "gpt-realtime",
            "gpt-realtime-2",
            "gpt-realtime-mini",
            "gpt-4o-realtime-preview",
            "gpt-4o-mini-realtime-preview",
        }
    )
    assert settings.prices["gpt-realtime"] == PRICE


def test_config_prices_replace_one_model_and_add_others(tmp_path: Path) -> None:
    path = tmp_path / "proxy.toml"
    path.write_text(
        '[prices."gpt-realtime"]\ntext_input = 2.0\n[prices."my-deployment"]\naudio_output = 50.0\n'
    )
    settings = load_settings(path, environ={})
    assert settings.prices["gpt-realtime"] == ModelPrice(text_input=2.0)  # the whole entry is replaced
    assert settings.prices["my-deployment"] == ModelPrice(audio_output=50.0)
    assert settings.prices["gpt-realtime-mini"] == ModelPrice(**DEFAULT_PRICES["gpt-realtime-mini"])


def test_a_misspelt_price_is_a_startup_error(tmp_path: Path) -> None:
    path = tmp_path / "proxy.toml"
    path.write_text('[prices."gpt-realtime"]\ntext_inptu = 2.0\n')
    with pytest.raises(ConfigError, match=r"prices\.gpt-realtime\.text_inptu: unknown setting"):
        load_settings(path, environ={})


def test_the_server_named_model_is_learnt_only_before_the_first_response() -> None:
    table = {"gpt-realtime": PRICE}
    sideband = SessionCost(None, table)
    sideband.learn(None)
    assert sideband.label == OTHER_MODEL
    sideband.learn("gpt-realtime-2025-08-28")
    assert (sideband.label, sideband.price) == ("gpt-realtime", PRICE)
    named = SessionCost("gpt-realtime", table)
    named.learn("my-deployment")  # the handshake's model stands
    assert named.label == "gpt-realtime"
    late = SessionCost(None, table)
    late.add([("input", "text", False, 10)])
    late.learn("gpt-realtime")  # a session keeps one label once a response was counted
    assert (late.label, late.total_usd) == (OTHER_MODEL, 0.0)

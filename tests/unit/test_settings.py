"""load_settings: precedence flag > environment > file > default, and every bad key or value is a
ConfigError that names the key (nested keys dotted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from realtime_proxy.settings import ConfigError, Settings, env_overrides, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "proxy.toml"
    path.write_text(text)
    return path


def test_defaults() -> None:
    settings = load_settings(None, environ={})
    assert settings == Settings()
    assert settings.upstream_url == "wss://api.openai.com" and settings.max_frame_bytes == 16 * 1024 * 1024


def test_precedence_flag_env_file_default(tmp_path: Path) -> None:
    config = write(tmp_path, "port = 1111\nmax_sessions = 5\nidle_timeout = 3.0\n[retry]\nmax_attempts = 4\n")
    environ = {"REALTIME_PROXY_PORT": "2222", "REALTIME_PROXY_RETRY__MAX_ATTEMPTS": "6", "OTHER": "x"}
    settings = load_settings(config, environ=environ, flags={"port": 3333, "host": None})
    assert settings.port == 3333  # flag
    assert settings.retry.max_attempts == 6  # env over file, nested
    assert settings.max_sessions == 5 and settings.idle_timeout == 3.0  # file
    assert settings.host == "0.0.0.0"  # a flag left as None does not override
    assert load_settings(config, environ=environ).port == 2222
    assert load_settings(config, environ={}).port == 1111


def test_env_lists_are_comma_separated() -> None:
    assert env_overrides({"REALTIME_PROXY_AUTH__ALLOWED_ORIGINS": "https://a, https://b,"}) == {
        "auth": {"allowed_origins": ["https://a", "https://b"]}
    }
    settings = load_settings(None, environ={"REALTIME_PROXY_AUTH__ALLOWED_ORIGINS": "https://a,https://b"})
    assert settings.auth.allowed_origins == ("https://a", "https://b")


def test_shipped_config_is_valid_and_all_defaults() -> None:
    shipped = Path(__file__).resolve().parents[2] / "config" / "proxy.toml"
    settings = load_settings(shipped, environ={})
    assert settings.model_dump(exclude={"rules"}) == Settings().model_dump(exclude={"rules"})


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ("prot = 1\n", "prot", "unknown setting"),
        ("[retry]\nmax_attemps = 2\n", "retry.max_attemps", "unknown setting"),
        ("[auth]\nmode = 'magic'\n", "auth.mode", ""),
        ("[auth]\ntoken_sha256 = ['abc']\n", "auth.token_sha256", "64-character"),
        ("port = 70000\n", "port", ""),
        ("port = 'x'\n", "port", ""),
        ("upstream_url = 'http://x'\n", "upstream_url", "ws://"),
        ("[rules.bogus]\nenabled = true\n", "rules", "unknown rule 'bogus'"),
        ("[rules.drop_temperature]\nenable = true\n", "rules", ""),
    ],
)
def test_bad_file_names_key(tmp_path: Path, text: str, key: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text), environ={})
    text_out = str(info.value)
    assert f"  {key}: " in text_out or f"  {key}." in text_out, text_out
    assert message in text_out
    assert "proxy.toml" in text_out  # the file alone is checked first, so the error names it


def test_bad_env_names_key() -> None:
    with pytest.raises(ConfigError, match=r"retry\.max_attempts"):
        load_settings(None, environ={"REALTIME_PROXY_RETRY__MAX_ATTEMPTS": "eleven"})
    with pytest.raises(ConfigError, match="nosuch"):
        load_settings(None, environ={"REALTIME_PROXY_NOSUCH": "1"})


def test_tls_pair_and_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="tls_cert and tls_key"):
        load_settings(None, environ={}, flags={"tls_cert": "a.pem"})
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.toml", environ={})
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(write(tmp_path, "port = = 1\n"), environ={})


def test_orchestration_settings_and_what_the_stage_gets(tmp_path: Path) -> None:
    from realtime_proxy.core.orchestration_observations import OrchestrationOptions
    from realtime_proxy.edge.session_builder import orchestration_options

    assert orchestration_options(load_settings(None, environ={})) == OrchestrationOptions()
    config = write(
        tmp_path,
        "[orchestration]\nmode = 'repair'\ncoalesce_tool_calls = false\nmax_held_creates = 3\n"
        "tool_output_timeout = 2.5\n",
    )
    environ = {"REALTIME_PROXY_ORCHESTRATION__HOLD_EARLY_CANCELS": "false"}
    assert orchestration_options(load_settings(config, environ=environ)) == OrchestrationOptions(
        coalesce_tool_calls=False, hold_early_cancels=False, max_held=3, tool_output_timeout=2.5
    )
    observe = load_settings(None, environ={"REALTIME_PROXY_ORCHESTRATION__MODE": "observe"})
    assert orchestration_options(observe) == OrchestrationOptions(observe_only=True)
    dry_run = load_settings(None, environ={}, flags={"dry_run": True})
    assert orchestration_options(dry_run) == OrchestrationOptions(observe_only=True)
    assert orchestration_options(load_settings(write(tmp_path, "[orchestration]\nmode = 'off'\n"))) is None
    with pytest.raises(ConfigError, match=r"orchestration.mode"):
        load_settings(write(tmp_path, "[orchestration]\nmode = 'queue'\n"), environ={})
    with pytest.raises(ConfigError, match=r"orchestration.max_held: unknown setting"):
        load_settings(write(tmp_path, "[orchestration]\nmax_held = 3\n"), environ={})


def test_the_old_queue_setting_still_loads_with_a_deprecation() -> None:
    from realtime_proxy.core.orchestration_observations import OrchestrationOptions
    from realtime_proxy.edge.session_builder import orchestration_options

    assert load_settings(None, environ={}).deprecations == []
    legacy = load_settings(None, environ={}, flags={"rules": {"queue_in_band_responses": True}})
    assert legacy.deprecations and "rules.queue_in_band_responses is deprecated" in legacy.deprecations[0]
    assert orchestration_options(legacy) == OrchestrationOptions()
    # With serialisation switched off in [orchestration], the old key still asks for it.
    both = {"rules": {"queue_in_band_responses": True}, "orchestration": {"serialise_responses": False}}
    assert orchestration_options(load_settings(None, environ={}, flags=both)) == OrchestrationOptions()
    off = {"rules": {"queue_in_band_responses": False}}
    assert load_settings(None, environ={}, flags=off).deprecations == legacy.deprecations


def test_models_table(tmp_path: Path) -> None:
    config = tmp_path / "proxy.toml"
    config.write_text(
        '[models.aliases]\n"gpt-4o-realtime-preview" = "gpt-realtime"\n'
        '[models.rules."gpt-realtime-2"]\ntool_choice_object = false\n'
    )
    settings = load_settings(config, environ={})
    assert settings.models.aliases == {"gpt-4o-realtime-preview": "gpt-realtime"}
    assert settings.models.rules == {"gpt-realtime-2": {"tool_choice_object": False}}
    config.write_text('[models.rules."gpt-realtime-2"]\nno_such_rule = true\n')
    with pytest.raises(ConfigError, match="no_such_rule"):
        load_settings(config, environ={})

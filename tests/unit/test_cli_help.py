"""The top-level help names every command and what the exit codes mean."""

from __future__ import annotations

import pytest

from realtime_proxy.commands.cli import build_parser, main


def test_top_level_help_lists_lint_tracing_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert text == build_parser().format_help()
    assert "realtime-proxy lint FILE" in text.split("\n\n")[0]  # in the usage lines
    assert "commands:\n  lint FILE" in text
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in text and "OTEL_SERVICE_NAME" in text
    assert "exit codes: 0 stopped by SIGTERM/SIGINT, 1 start-up failed" in text


def test_bad_configuration_exits_2_as_the_help_says(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--port", "99999"]) == 2
    assert "port" in capsys.readouterr().err

"""Response objects and usage blocks in the exact key order the API sends them."""

from __future__ import annotations

from typing import Any


def usage(
    *,
    input_text: int = 0,
    input_audio: int = 0,
    cached_text: int = 0,
    cached_audio: int = 0,
    output_text: int = 0,
    output_audio: int = 0,
) -> dict[str, Any]:
    input_tokens = input_text + input_audio
    output_tokens = output_text + output_audio
    return {
        "total_tokens": input_tokens + output_tokens,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "input_token_details": {
            "cached_tokens": cached_text + cached_audio,
            "text_tokens": input_text,
            "audio_tokens": input_audio,
            "cached_tokens_details": {"text_tokens": cached_text, "audio_tokens": cached_audio},
        },
        "output_token_details": {"text_tokens": output_text, "audio_tokens": output_audio},
    }


def failed_response(
    response_id: str,
    *,
    error_type: str,
    code: str | None,
    max_output_tokens: int | str,
    metadata: dict[str, str] | None,
) -> dict[str, Any]:
    """The failed response.done body, shaped exactly like shared/seed-report.txt."""
    error: dict[str, Any] = {"type": error_type}
    if code is not None:
        error["code"] = code
    return {
        "id": response_id,
        "object": "realtime.response",
        "status": "failed",
        "status_details": {"error": error, "type": "failed"},
        "output": [],
        "usage": usage(),
        "max_output_tokens": max_output_tokens,
        "metadata": metadata,
    }


def rate_limits(tokens_used: int) -> list[dict[str, Any]]:
    return [
        {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
        {
            "name": "tokens",
            "limit": 800000,
            "remaining": max(0, 800000 - tokens_used),
            "reset_seconds": round(tokens_used * 0.000075, 3),
        },
    ]

"""The fake's plain HTTP routes, straight (no proxy): what the real API accepts and refuses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from realtime_proxy.fake_upstream import FakeUpstream
from realtime_proxy.fake_upstream.http_realtime import SDP_ANSWER

KEY = "sk-fake-http-123456789"
SDP = b"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n"


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    async with FakeUpstream(api_key=KEY) as fake:
        headers = {"Authorization": f"Bearer {KEY}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{fake.port}/v1", headers=headers) as client:
            yield client


def refusal(response: httpx.Response) -> tuple[int, str | None, str | None]:
    error = response.json()["error"]
    return response.status_code, error["code"], error["param"]


@pytest.mark.parametrize(
    ("session", "code", "param"),
    [
        ({"modalities": ["text"]}, "missing_required_parameter", "session.type"),
        ({"type": "realtime", "modalities": ["text"]}, "unknown_parameter", "session.modalities"),
        ({"type": "realtime", "temperature": 0.8}, "unknown_parameter", "session.temperature"),
        (
            {"type": "realtime", "output_modalities": ["text", "audio"]},
            "invalid_value",
            "session.output_modalities",
        ),
        ({"type": "conversation"}, "invalid_value", "session.type"),
    ],
)
async def test_client_secret_refuses_what_the_api_refuses(
    api: httpx.AsyncClient, session: dict[str, object], code: str, param: str
) -> None:
    async with asyncio.timeout(10):
        response = await api.post("/realtime/client_secrets", json={"session": session})
    assert refusal(response)[0] == 400
    assert refusal(response)[1:] == (code, param)


async def test_client_secret_for_each_session_type(api: httpx.AsyncClient) -> None:
    async with asyncio.timeout(10):
        realtime = (await api.post("/realtime/client_secrets", json={"session": {"type": "realtime"}})).json()
        transcription = await api.post(
            "/realtime/client_secrets",
            json={
                "session": {"type": "transcription", "audio": {"input": {"transcription": {"model": "m"}}}}
            },
        )
        translation = await api.post(
            "/realtime/translations/client_secrets", json={"session": {"model": "m", "type": "translation"}}
        )
    assert realtime["value"].startswith("ek_") and realtime["session"]["object"] == "realtime.session"
    assert transcription.json()["session"]["type"] == "transcription"
    assert refusal(translation) == (
        400,
        "unknown_parameter",
        "session.type",
    )  # translation configs have no type


async def test_calls_answer_sdp_with_a_location(api: httpx.AsyncClient) -> None:
    async with asyncio.timeout(10):
        bare = await api.post("/realtime/calls", content=SDP, headers={"Content-Type": "application/sdp"})
        bad_session = await api.post(
            "/realtime/calls",
            files={"sdp": (None, SDP, "application/sdp"), "session": (None, b'{"voice": "x"}')},
        )
        no_sdp = await api.post("/realtime/calls", files={"session": (None, b'{"type": "realtime"}')})
    assert (bare.status_code, bare.content) == (201, SDP_ANSWER)
    assert bare.headers["location"].startswith("/v1/realtime/calls/rtc_")
    assert refusal(bad_session) == (400, "missing_required_parameter", "session.type")
    assert refusal(no_sdp) == (400, "missing_required_parameter", "sdp")


async def test_auth_and_unknown_routes(api: httpx.AsyncClient) -> None:
    async with asyncio.timeout(10):
        anonymous = await api.get("/models", headers={"Authorization": ""})
        unknown = await api.get("/nothing-here")
    assert refusal(anonymous)[:2] == (401, "invalid_api_key")
    assert (
        unknown.status_code == 404
        and unknown.json()["error"]["message"] == "Invalid URL (GET /v1/nothing-here)"
    )

"""The Node SDK (`openai` from npm) with baseURL set to the proxy's TLS listener: `models.list()`, a
repaired client secret and a Realtime WebSocket session through one client object.

The package is installed once into `.cache/node-openai` (git-ignored) and reused; skipped only when
`node` is missing."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from realtime_proxy.edge.server import ProxyServer
from realtime_proxy.fake_upstream import FakeUpstream
from realtime_proxy.settings import load_settings
from tests.conftest import API_KEY
from tests.e2e.helpers import self_signed

ROOT = Path(__file__).resolve().parents[3]
CACHE = ROOT / ".cache" / "node-openai"
SCRIPT = Path(__file__).with_name("node") / "sdk_through_proxy.cjs"
PACKAGES = ("openai@6", "ws@8")

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed (Node SDK test)")


def node_sdk() -> Path:
    """node_modules with `openai` and `ws`, installed from npm on first use."""
    modules = CACHE / "node_modules"
    if not (modules / "openai" / "package.json").exists() or not (modules / "ws").exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        (CACHE / "package.json").write_text('{"private": true}\n')
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed (needed once to fetch the Node SDK)")
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--silent", *PACKAGES],
            cwd=CACHE, check=True, capture_output=True, timeout=240,
        )  # fmt: skip
    return modules


@pytest.mark.timeout(300)  # the first run downloads the package
async def test_node_sdk_one_base_url_over_tls(fake: FakeUpstream, tmp_path: Path) -> None:
    modules = await asyncio.to_thread(node_sdk)
    cert, key = self_signed(tmp_path)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    flags = {"host": "127.0.0.1", "port": 0, "upstream_url": fake.url, "ping_interval": 0}
    server = ProxyServer(load_settings(None, environ={}, flags=flags))
    await server.start(tls)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "NODE_PATH": str(modules),
        "NODE_EXTRA_CA_CERTS": str(cert),  # trust the proxy's self-signed certificate
        "OPENAI_API_KEY": API_KEY,
        "BASE_URL": f"https://localhost:{server.port}/v1",
    }
    try:
        node = await asyncio.create_subprocess_exec(
            "node", str(SCRIPT), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        async with asyncio.timeout(30):
            out, err = await node.communicate()
    finally:
        await server.shutdown(grace=0)
    assert node.returncode == 0, err.decode()[-2000:]
    seen = json.loads(out.decode().strip().splitlines()[-1])
    assert "gpt-realtime" in seen["models"]
    assert seen["secret"] == {"prefix": "ek_", "type": "realtime"}  # repaired: the fake refuses it as sent
    assert seen["events"][:2] == ["session.created", "session.updated"]
    assert [(r.method, r.path) for r in fake.http.records] == [
        ("GET", "/v1/models"),
        ("POST", "/v1/realtime/client_secrets"),
    ]
    assert [c.path for c in fake.connections] == ["/v1/realtime"]

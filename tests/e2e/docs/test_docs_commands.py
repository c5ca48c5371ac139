"""The code blocks of README.md and docs/*.md marked runnable run as written.

Markers, in the fence's info string:
- ```sh runnable / ```python runnable: run from the repository root; must exit 0.
- ```... runnable-with-proxy: the same, while `realtime-proxy --fake-upstream` runs; the documented
  ports 8080 and 9464 are replaced by the ones this test's proxy got (other jobs may hold 8080).
- ```console runnable: `$ ` lines are commands; every other line is output that must appear, as a
  whole line, in what they print (an example may be abridged, never invented).
A `print(...)  # text` line in a Python block must print `text`. `.venv/bin/` means the environment
running the tests (CI also runs them from an unlocked environment)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.helpers import proxy_process

ROOT = Path(__file__).resolve().parents[3]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```(\w+) ([\w-]+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_EXPECTED_PRINT = re.compile(r"print\(.*\)\s+# (.+)$")


@dataclass(frozen=True)
class Block:
    source: str
    language: str
    marker: str
    text: str

    def __str__(self) -> str:
        return f"{self.source}:{self.language}:{self.text.splitlines()[0][:40]}"


def blocks(marker: str) -> list[Block]:
    found = []
    for path in DOCS:
        for language, mark, text in _FENCE.findall(path.read_text()):
            if mark == marker:
                found.append(Block(str(path.relative_to(ROOT)), language, mark, text))
    return found


def adapt(text: str, port: int = 8080, metrics_port: int = 9464) -> str:
    text = text.replace(".venv/bin/", str(Path(sys.executable).parent) + "/")
    return re.sub(r"\b9464\b", str(metrics_port), re.sub(r"\b8080\b", str(port), text))


def run(block: Block, text: str) -> subprocess.CompletedProcess[str]:
    shell = ["bash", "-c", text] if block.language == "console" else ["bash", "-e", "-c", text]
    command = [sys.executable, "-c", text] if block.language == "python" else shell
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)


def check(block: Block, result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"{block}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert result.stdout.strip(), f"{block}: printed nothing"
    for line in block.text.splitlines():
        if block.language == "python" and (expected := _EXPECTED_PRINT.search(line)):
            assert expected.group(1).strip() in result.stdout, f"{block}: {expected.group(1)!r} not printed"


def check_console(block: Block) -> None:
    """The commands' exit codes are theirs to document (lint exits 1 on findings): the output counts."""
    commands = [line[2:] for line in block.text.splitlines() if line.startswith("$ ")]
    shown = [line for line in block.text.splitlines() if line.strip() and not line.startswith("$ ")]
    result = run(block, adapt("\n".join(commands)))
    printed = set(result.stdout.splitlines())
    assert commands and [line for line in shown if line not in printed] == [], (block, result.stderr)


def test_the_readme_has_runnable_blocks_of_each_kind() -> None:
    markers = {(b.source, b.marker) for m in ("runnable", "runnable-with-proxy") for b in blocks(m)}
    assert {("README.md", "runnable"), ("README.md", "runnable-with-proxy")} <= markers


@pytest.mark.parametrize("block", blocks("runnable"), ids=str)
def test_runnable_block(block: Block) -> None:
    if block.language == "console":
        check_console(block)
    else:
        check(block, run(block, adapt(block.text)))


async def test_runnable_blocks_with_a_proxy() -> None:
    """One proxy for all of them (each start costs a second or more on a loaded machine)."""
    found = blocks("runnable-with-proxy")
    assert found
    args = ("--fake-upstream", "--host", "127.0.0.1", "--port", "0", "--metrics-port", "0")
    async with proxy_process(*args) as proxy:
        for block in found:
            # A thread: the proxy's log pipe is drained by a task of this loop meanwhile.
            text = adapt(block.text, proxy.port, proxy.metrics_port)
            check(block, await asyncio.to_thread(run, block, text))

"""Every file the README points at is in a clone of the repository (nothing from outside it), except
the benchmark's output, which the README says a run writes and which is not committed."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
GENERATED = {"bench/results/latest.md": "bench/results/"}  # written by `python -m bench`, git-ignored
_PATH = re.compile(r"`([A-Za-z0-9_.][^`\s]*/[^`\s]*)`")
_URL_OR_ROUTE = ("http", "ws:", "wss:", "/")


def referenced_paths() -> set[str]:
    found = {m for m in _PATH.findall(README) if not m.startswith(_URL_OR_ROUTE)}
    return {m for m in found if re.search(r"\.[a-z]{2,5}$|/$", m)}


def test_readme_points_only_at_files_a_clone_has() -> None:
    paths = referenced_paths()
    assert "config/proxy.toml" in paths  # the scan finds paths at all
    assert not [p for p in paths if p.startswith("..")], "paths outside the repository"
    missing = [
        p
        for p in sorted(paths)
        if p not in GENERATED and not ((ROOT / p).exists() or (ROOT / "realtime_proxy" / p).exists())
    ]
    assert not missing


def test_generated_files_are_described_as_generated_and_ignored() -> None:
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    for path, folder in GENERATED.items():
        assert folder in ignored
        sentence = README[README.index(path) - 200 : README.index(path) + 200]
        assert "not committed" in sentence

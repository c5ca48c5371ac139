"""Every file README.md and docs/*.md point at is in a clone of the repository (nothing from outside
it), except the benchmark's output, which the docs say a run writes and which is not committed; every
Markdown link between them reaches a file and a heading that exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TEXT = {path: path.read_text() for path in DOCS}
# Written by a run, git-ignored: `python -m bench`, `scripts/build_rootfs.py`.
GENERATED = {"bench/results/latest.md": "bench/results/", ".cache/rootfs/": ".cache/"}
# Linked from the README's map, written on other branches (issue 23's brief): each entry must go once
# its file exists (test_pending_docs_are_still_pending says when).
PENDING: set[str] = set()
_PATH = re.compile(r"`([A-Za-z0-9_.][^`\s]*/[^`\s]*)`")
_URL_OR_ROUTE = ("http", "ws:", "wss:", "/")
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```.*?^```$", re.MULTILINE | re.DOTALL)


def referenced_paths(text: str) -> set[str]:
    found = {m for m in _PATH.findall(text) if not m.startswith(_URL_OR_ROUTE)}
    return {m for m in found if re.search(r"\.[a-z]{2,5}$|/$", m)}


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    return {slug(h) for h in re.findall(r"^#{1,6} (.+)$", _FENCE.sub("", text), re.MULTILINE)}


def test_docs_point_only_at_files_a_clone_has() -> None:
    for path, text in TEXT.items():
        paths = referenced_paths(text)
        assert not [p for p in paths if p.startswith("..")], f"{path.name}: paths outside the repository"
        missing = [
            p
            for p in sorted(paths)
            if p not in GENERATED and not ((ROOT / p).exists() or (ROOT / "realtime_proxy" / p).exists())
        ]
        assert not missing, f"{path.name}: {missing}"
    assert "config/proxy.toml" in referenced_paths(TEXT[ROOT / "docs" / "settings.md"])  # the scan works


def test_links_reach_files_and_headings() -> None:
    broken = []
    for path, text in TEXT.items():
        for link in _LINK.findall(_FENCE.sub("", text)):
            if link.startswith(("http://", "https://", "mailto:")):
                continue
            target, _, anchor = link.partition("#")
            file = (path.parent / target).resolve() if target else path
            if not file.exists():
                if file.name in PENDING and file.parent == ROOT / "docs":
                    continue
                broken.append(f"{path.name}: {link}")
            elif anchor and file.suffix == ".md" and anchor not in anchors(file.read_text()):
                broken.append(f"{path.name}: {link} (no such heading)")
    assert not broken


def test_pending_docs_are_still_pending() -> None:
    arrived = sorted(name for name in PENDING if (ROOT / "docs" / name).exists())
    assert not arrived, f"remove from PENDING, the link is checked now: {arrived}"
    readme = TEXT[ROOT / "README.md"]
    assert all(f"(docs/{name})" in readme for name in PENDING)


def test_every_docs_file_is_on_the_readme_map() -> None:
    readme = TEXT[ROOT / "README.md"]
    assert [p.name for p in DOCS[1:] if f"(docs/{p.name})" not in readme] == []


def test_generated_files_are_described_as_generated_and_ignored() -> None:
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    everything = "\n".join(TEXT.values())
    for path, folder in GENERATED.items():
        assert folder in ignored
        sentence = everything[everything.index(path) - 200 : everything.index(path) + 200]
        assert "not committed" in sentence


def test_the_rule_table_is_the_catalogues() -> None:
    """docs/rules.md's table is `realtime-proxy rules --format markdown`, regenerated when a rule changes."""
    from realtime_proxy.commands.catalogue import _markdown

    assert _markdown() in TEXT[ROOT / "docs" / "rules.md"]


def test_every_setting_is_in_the_settings_doc() -> None:
    from pydantic import BaseModel

    from realtime_proxy.settings import Settings

    text = TEXT[ROOT / "docs" / "settings.md"]
    missing = [name for name in Settings.model_fields if f"`{name}" not in text]
    for name, field in Settings.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            subs = field.annotation.model_fields
            missing += [f"{name}.{sub}" for sub in subs if not re.search(rf"\b{sub}\b", text)]
    assert not missing

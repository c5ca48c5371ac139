"""CI check: the shipped lock is a subset of the tested lock, and both name every declared dependency.

Run as `python scripts/check_lock.py`; exits non-zero with the reason when `bash scripts/lock` is due.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lock: Path) -> dict[str, str]:
    return {canonical(name): version for name, version in _PIN.findall(lock.read_text())}


def declared(extras: tuple[str, ...]) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in extras:
        requirements += project["optional-dependencies"][extra]
    return {canonical(m.group(1)) for r in requirements if (m := _NAME.match(r))}


def problems() -> list[str]:
    shipped, tested = pins(ROOT / "requirements.lock"), pins(ROOT / "requirements-dev.lock")
    found = [
        f"{name}=={version} ships but the tests run {tested.get(name, 'without it')}"
        for name, version in sorted(shipped.items())
        if tested.get(name) != version
    ]
    found += [
        f"{name} is declared but not in requirements.lock" for name in declared(("fast",)) - set(shipped)
    ]
    found += [
        f"{name} is declared but not in requirements-dev.lock"
        for name in declared(("dev", "fast")) - set(tested)
    ]
    return found


if __name__ == "__main__":
    found = problems()
    for problem in found:
        print(f"lock: {problem} (run `bash scripts/lock`)", file=sys.stderr)
    sys.exit(1 if found else 0)

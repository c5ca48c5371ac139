"""CI check: each shipped lock is a subset of the tested lock, and every lock names its declared dependencies.

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


# Each lock that ships (README command 1, the image with and without EXTRAS=otel) and its extras.
SHIPPED = (("requirements.lock", ("fast",)), ("requirements-otel.lock", ("fast", "otel")))


def problems() -> list[str]:
    tested = pins(ROOT / "requirements-dev.lock")
    found = [
        f"{name} is declared but not in requirements-dev.lock"
        for name in declared(("dev", "fast", "otel")) - set(tested)
    ]
    for lock, extras in SHIPPED:
        shipped = pins(ROOT / lock)
        found += [
            f"{name}=={version} ships in {lock} but the tests run {tested.get(name, 'without it')}"
            for name, version in sorted(shipped.items())
            if tested.get(name) != version
        ]
        found += [f"{name} is declared but not in {lock}" for name in declared(extras) - set(shipped)]
    return found


if __name__ == "__main__":
    found = problems()
    for problem in found:
        print(f"lock: {problem} (run `bash scripts/lock`)", file=sys.stderr)
    sys.exit(1 if found else 0)

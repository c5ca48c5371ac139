"""One shared instance of each equal immutable value that every session would otherwise build for
itself (options, policies, timings derived from the settings): ~60-80 B each per idle session
(issue 26). Bounded: past `MAX_VALUES` distinct values the table starts again (values stay valid)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, TypeVar

T = TypeVar("T", bound=Hashable)
MAX_VALUES = 256
_VALUES: dict[tuple[type, Any], Any] = {}


def interned(value: T) -> T:
    """`value`, or an equal one of the same type interned before (frozen dataclasses only)."""
    key = (type(value), value)
    found: T | None = _VALUES.get(key)
    if found is None:
        if len(_VALUES) >= MAX_VALUES:
            _VALUES.clear()
        found = _VALUES[key] = value
    return found

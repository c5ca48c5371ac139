"""Server-side identifiers shaped like the real API's (``event_`` + 21 base62 chars)."""

from __future__ import annotations

import itertools
import secrets
import string

_ALPHABET = string.ascii_letters + string.digits
_counter = itertools.count()


def new_id(prefix: str) -> str:
    # A process-wide counter in the tail makes ids unique even if the random part collides.
    n = next(_counter)
    tail = ""
    for _ in range(5):
        n, r = divmod(n, 62)
        tail = _ALPHABET[r] + tail
    head = "".join(secrets.choice(_ALPHABET) for _ in range(16))
    return f"{prefix}_{head}{tail}"

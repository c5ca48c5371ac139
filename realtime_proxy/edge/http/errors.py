"""The upstream client's failures (`client.py`, `leg.py`)."""


class UpstreamError(Exception):
    """The upstream could not be reached, or broke the exchange off."""


class UpstreamTimedOut(UpstreamError):
    """Connect, pool, write or read timeout."""

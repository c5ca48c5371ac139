"""Plain HTTP on the client port: h11 connections, repairs on the Realtime routes, an h11 upstream client."""

from __future__ import annotations

from realtime_proxy.edge.http.service import HttpService

__all__ = ["HttpService"]

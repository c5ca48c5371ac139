"""Plain HTTP on the client port: h11 connections, repairs on the Realtime routes, httpx upstream."""

from __future__ import annotations

from realtime_proxy.edge.http.service import HttpService

__all__ = ["HttpService"]

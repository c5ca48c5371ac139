"""Transparent WebSocket proxy for the OpenAI Realtime API that repairs risky client events."""

__version__ = "0.1.0"

"""Latency/CPU/memory benchmark of the proxy against a direct connection and a bare relay.

Run with `python -m bench` (full) or `python -m bench --quick` (CI smoke test)."""

"""Observation: logs, metrics, traces, cost and recordings of what the core reports."""

"""Entry points: the CLI, the single-process server, the supervisor and its workers, probe, lint."""

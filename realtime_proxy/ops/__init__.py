"""The operator edge: settings, logs, metrics, the observer, the command line, lint and recording."""

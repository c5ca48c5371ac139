"""The network edge: the only code that awaits or touches sockets (listener, upstream, relay, health)."""

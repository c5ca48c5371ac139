"""The pure core: synchronous stages that know nothing of sockets, clocks or loggers.

Nothing under `realtime_proxy.core` awaits, reads the clock or touches a socket: time comes in as `now`,
and every decision goes out as a typed action (`realtime_proxy.core.actions`) for an edge to carry out.
"""

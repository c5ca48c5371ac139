"""The API's own facts, pure and shared: event catalogues (`events`), error bodies (`errors`) and
the GA-strict validation of client payloads (`validation`).

Used by the core's rules, the edge's refusals, `lint` and the fake upstream alike, so the proxy, its
offline checker and its simulator cannot drift apart. No I/O, no clock, no logging.
"""

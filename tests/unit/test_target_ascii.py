"""visible_ascii's string-method form accepts exactly RFC 9112's visible ASCII (0x21-0x7e)."""

from __future__ import annotations

from realtime_proxy.edge.target import visible_ascii


def test_every_code_point_alone_and_inside_a_target() -> None:
    for code in range(0x3000):
        char = chr(code)
        expected = 0x21 <= code < 0x7F
        assert visible_ascii(char) is expected, hex(code)
        assert visible_ascii(f"/v1/models?x={char}") is expected, hex(code)


def test_the_empty_target_has_nothing_invisible() -> None:
    assert visible_ascii("") is True

"""The keyless-mode Host rule of the browser checks: loopback names, addresses, the bind host."""

from __future__ import annotations

import pytest

from emostream.runtime.origin_check import is_local_host


@pytest.mark.parametrize(
    ("host", "bind_host", "local"),
    [
        ("localhost:8000", None, True),
        ("LOCALHOST", None, True),
        ("127.0.0.2:8000", None, True),
        ("[::1]:8000", None, True),
        ("::1", None, True),
        ("10.0.0.5:8000", "10.0.0.5", True),
        ("[fd00::5]:8000", "fd00::5", True),
        ("10.0.0.6:8000", "10.0.0.5", False),
        ("localhost.attacker.example", None, False),  # DNS rebinding names its own host
        ("attacker.example:8000", None, False),
        ("", None, False),
    ],
)
def test_local_host(host, bind_host, local):
    assert is_local_host(host, bind_host) is local

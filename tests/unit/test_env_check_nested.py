"""Settings of nested sections (``EMOSTREAM_INGEST__HTTP__*``) are known: no warning that a
setting the service reads "is ignored"; a typo in one still gets the nearest name."""

from __future__ import annotations

from emostream.cli.env_check import unknown_variable_warnings


def test_nested_settings_are_known_and_their_typos_named():
    environ = {
        "EMOSTREAM_INGEST__HTTP__PORT": "8001",
        "EMOSTREAM_INGEST__HTTP__MAX_FRAME_BYTES": "500000",
        "EMOSTREAM_HTTP_SERVER__IDLE_TIMEOUT_S": "3",
        "EMOSTREAM_INGEST__HTTP__PORTT": "8001",
    }
    (warning,) = unknown_variable_warnings(environ)
    assert "EMOSTREAM_INGEST__HTTP__PORTT" in warning
    assert "did you mean EMOSTREAM_INGEST__HTTP__PORT?" in warning

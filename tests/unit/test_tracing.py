"""Trace context with tracing off (the default: the API's no-op provider): frames get an
unsampled ``traceparent`` at ingest, or the HTTP client's; the worker's events and the
aggregator's webhooks pass it along unchanged; nothing is recorded (issue 36, 4)."""

from __future__ import annotations

import re

from emostream import tracing
from emostream.aggregator.webhooks.attempt import Delivery, signed_headers
from emostream.frames import FrameMeta, frame_headers
from emostream.webhooks import new_secret
from emostream.worker.batch import RawFrame
from emostream.worker.frame_traces import BatchTraces
from tests.unit.test_webhooks import make_alert

CLIENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class Acked:
    def cancelled(self) -> bool:
        return False

    def exception(self) -> None:
        return None


def test_off_by_default_and_frames_get_an_unsampled_traceparent(monkeypatch):
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    assert tracing.configure_tracing("ingest") is False
    assert not tracing.recording()
    headers = frame_headers(FrameMeta("cam", 0, 1))
    tracing.start_publish(headers, "cam")(Acked())
    value = tracing.header(headers)
    assert value is not None and re.fullmatch(rb"00-[0-9a-f]{32}-[0-9a-f]{16}-00", value)
    other = frame_headers(FrameMeta("cam", 1, 1))
    tracing.start_publish(other, "cam")
    assert tracing.header(other) != value  # one trace per frame


def test_the_clients_traceparent_passes_to_events_and_webhooks():
    headers = frame_headers(FrameMeta("cam", 7, 1))
    tracing.start_publish(headers, "cam", tracing.extract(CLIENT))
    assert tracing.header(headers) == CLIENT.encode()
    traces = BatchTraces([RawFrame("frames", 0, 3, b"", headers)])
    traces.processed({"decode": 0.01}, 0)
    assert traces.header("cam", 7) == [("traceparent", CLIENT.encode())]
    assert traces.header("cam", 8) == []  # no such frame: no header
    traces.published()
    with tracing.store_span([None, CLIENT.encode()]):
        item = Delivery("rule", "http://127.0.0.1/h", make_alert(), tracing.current())
    sent = signed_headers([new_secret()], item, 1, b"{}")
    assert "traceparent" not in sent  # outside the delivery's span: no context
    with tracing.child_span("webhook delivery", item.trace):
        assert signed_headers([new_secret()], item, 1, b"{}")["traceparent"] == CLIENT


def test_untraced_frames_and_events_carry_no_header():
    traces = BatchTraces([RawFrame("frames", 0, 0, b"", frame_headers(FrameMeta("cam", 0, 1)))])
    assert traces.header("cam", 0) == []
    with tracing.store_span([None]):
        assert tracing.current() is None


def test_an_unknown_exporter_is_one_config_error(monkeypatch):
    import pytest

    from emostream.errors import ConfigError

    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "bogus")
    with pytest.raises(ConfigError, match="unknown exporter 'bogus'"):
        tracing.configure_tracing("worker")
    assert not tracing.recording()

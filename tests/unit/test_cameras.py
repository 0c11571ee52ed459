"""The camera registry's model: source rules, records of the cameras topic, PATCH merging."""

from __future__ import annotations

import argparse
import os

import pytest

import emostream.ingest.main as ingest_main
from emostream.cameras.model import (
    CameraPatch,
    CameraSpec,
    SourceRejected,
    check_source,
    decode,
    encode,
    patched,
)
from emostream.cli import services
from emostream.fleet_options import FleetOptions


@pytest.fixture
def fleet(tmp_path) -> FleetOptions:
    return FleetOptions(source_root=str(tmp_path))


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("rtsp://cam.local:554/stream1", "url"),
        ("https://127.0.0.1/live.m3u8", "url"),
        ("clips/a.mp4", "path"),
        ("sample", "sample"),
    ],
)
def test_accepted_sources(fleet, source, kind):
    assert check_source(source, fleet) == kind


def test_absolute_path_under_the_root_is_accepted(fleet, tmp_path):
    assert check_source(str(tmp_path / "x" / "y.mp4"), fleet) == "path"


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("ftp://127.0.0.1/a.mp4", "not allowed"),
        ("file:///etc/passwd", "not allowed"),
        ("/etc/passwd", "must lie under"),
        ("../outside.mp4", "must lie under"),
        ("clips/../../outside", "must lie under"),
        ("0", "webcam sources are off"),
        ("rtsp:///nohost", "no host"),
        ("a\nb", "control characters"),
    ],
)
def test_rejected_sources(fleet, source, why):
    with pytest.raises(SourceRejected, match=why):
        check_source(source, fleet)


def test_paths_need_a_root_and_webcams_a_setting():
    with pytest.raises(SourceRejected, match="SOURCE_ROOT"):
        check_source("clips/a.mp4", FleetOptions())
    assert check_source("0", FleetOptions(allow_webcams=True)) == "webcam"


def test_a_link_out_of_the_root_is_refused_where_the_camera_runs(fleet, tmp_path):
    (tmp_path / "out").symlink_to("/etc")
    assert check_source("out/passwd", fleet) == "path"  # the API cannot see the ingest's disk
    with pytest.raises(SourceRejected):
        check_source("out/passwd", fleet, resolve=True)


def test_records_round_trip_and_tombstones_delete():
    spec = CameraSpec(stream_id="cam-1", source="rtsp://h/s", fps=2)
    assert decode(b"cam-1", encode(spec)) == ("cam-1", spec)
    assert decode(b"cam-1", None) == ("cam-1", None)
    assert decode(b"cam-1", b"") == ("cam-1", None)
    assert decode(b"cam-2", encode(spec)) is None  # key and body disagree: not a camera
    assert decode(b"cam-1", b"{not json") is None
    assert decode(None, encode(spec)) is None


def test_patch_replaces_only_the_given_fields():
    spec = CameraSpec(stream_id="cam-1", source="rtsp://h/s", fps=2, resize=640)
    out = patched(spec, CameraPatch(fps=1))
    assert (out.fps, out.resize, out.source) == (1, 640, "rtsp://h/s")
    assert patched(spec, CameraPatch.model_validate({"resize": None})).resize is None


@pytest.mark.parametrize(
    ("argv", "env", "source"),
    [
        ([], {}, "fleet"),  # no source at all: a member of the camera fleet
        (["--source", "sample"], {}, "sample"),
        ([], {"EMOSTREAM_INGEST__SOURCE": "http"}, "http"),
    ],
)
def test_ingest_without_a_source_joins_the_fleet(monkeypatch, argv, env, source):
    for name in list(os.environ):
        if name.startswith("EMOSTREAM_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    seen = {}

    async def fake_run(settings):
        seen["source"] = settings.ingest.source
        return 0

    monkeypatch.setattr(ingest_main, "run_ingest", fake_run)
    parser = argparse.ArgumentParser()
    services.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["ingest", *argv])
    assert args.func(args) == 0 and seen["source"] == source

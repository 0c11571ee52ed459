"""The dashboard's files: the vendored chart library is the pinned, unmodified release with its
licence; the page refers only to files the aggregator serves; nothing names another origin."""

from __future__ import annotations

import hashlib
import re

from emostream.aggregator.api.routes.dashboard import SERVED, STATIC

UPLOT = STATIC / "vendor" / "uplot"


def test_uplot_is_the_pinned_release_with_its_licence():
    source = (UPLOT / "SOURCE").read_text()
    pins = dict(
        (name.removeprefix("dist/"), digest)
        for digest, name in re.findall(r"^([0-9a-f]{64}) (\S+)$", source, flags=re.M)
    )
    assert set(pins) == {"uPlot.iife.min.js", "uPlot.min.css", "LICENSE"}
    for name, digest in pins.items():
        assert hashlib.sha256((UPLOT / name).read_bytes()).hexdigest() == digest, name
    assert "(v1.6.32)" in (UPLOT / "uPlot.iife.min.js").read_text()[:100]
    assert "MIT License" in (UPLOT / "LICENSE").read_text()


def test_the_page_refers_only_to_served_files_of_this_origin():
    page = (STATIC / "dashboard.html").read_text()
    refs = re.findall(r'(?:src|href)="([^"#]+)"', page)
    static = [r.removeprefix("/dashboard/static/") for r in refs if r.startswith("/dashboard/s")]
    assert static and all(r in SERVED for r in static), static
    assert all(r.startswith("/") and not r.startswith("//") for r in refs), refs
    assert "<script>" not in page and "style=" not in page and "<style" not in page
    for path in [*STATIC.glob("js/*.js"), STATIC / "dashboard.css"]:
        text = path.read_text()
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", text), path.name
        imports = re.findall(r'from "([^"]+)"', text)
        assert all(i.startswith("./") and (path.parent / i).exists() for i in imports), imports


def test_no_static_module_grows_past_300_lines():
    sizes = {p.name: p.read_text().count("\n") for p in STATIC.glob("js/*.js")}
    assert sizes and max(sizes.values()) <= 300, sizes

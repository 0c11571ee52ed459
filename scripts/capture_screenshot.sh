#!/usr/bin/env bash
# The README's pictures, each from a real run of a browser test (headless Chromium) against the
# embedded broker and Redis, with the packaged model:
#   docs/capture.png             /capture, a fake camera playing a Face Research Lab London Set
#                                photo (CC BY 4.0); needs the reference photos
#                                (EMOSTREAM_REFERENCE_DATA, default ../shared)
#   docs/dashboard_overview.png  the dashboard's overview and stream view, on the demo's sample
#   docs/dashboard_stream.png    clip (scikit-image's public-domain astronaut photo)
# Needs chromium and chromium-driver. KDEF photos are never used: they may not be published.
set -euo pipefail
cd "$(dirname "$0")/.."
EMOSTREAM_SCREENSHOT=1 OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q -p no:cacheprovider \
  tests/integration/test_capture_browser.py tests/integration/test_dashboard_views.py
echo "wrote docs/capture.png, docs/dashboard_overview.png, docs/dashboard_stream.png"

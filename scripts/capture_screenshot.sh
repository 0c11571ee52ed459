#!/usr/bin/env bash
# docs/capture.png, the README's picture of /capture: a real run of the browser test (headless
# Chromium, a fake camera playing a Face Research Lab London Set photo, CC BY 4.0) against the
# embedded broker and Redis, with the packaged model. Needs chromium, chromium-driver and the
# reference photos (EMOSTREAM_REFERENCE_DATA, default ../shared).
set -euo pipefail
cd "$(dirname "$0")/.."
EMOSTREAM_SCREENSHOT=1 OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q -p no:cacheprovider \
  tests/integration/test_capture_browser.py
echo "wrote docs/capture.png"

#!/usr/bin/env bash
# One GPU session's training run (issue 22): ensemble members + a larger RMN in about 8 minutes.
#
# Prepare here (the data and tools are not in the project; runs/ is ignored):
#   mkdir -p runs/gpu && cp ../shared/data/fer2013/fer2013_train_publictest.webp.npz \
#       ../shared/tools/fer2013_pack.py runs/gpu/
#   .venv/bin/pip download --no-deps -d runs/gpu/wheels structlog
# Then run on the device with carry ["runs/gpu"]:  scripts/gpu_train.sh "$OUT"
# The device has torch, numpy, OpenCV and tqdm but not structlog: its wheel is carried.
set -euo pipefail
out=${1:?usage: scripts/gpu_train.sh OUT_DIR [extra gpu_train.py args]}
shift
here=$(cd "$(dirname "$0")/.." && pwd)
pkg=$(mktemp -d)
python3 -m pip install --quiet --no-index --no-deps --target "$pkg" "$here"/runs/gpu/wheels/*.whl
csv=$pkg/fer2013.csv
python3 "$here/runs/gpu/fer2013_pack.py" unpack "$here/runs/gpu/fer2013_train_publictest.webp.npz" "$csv"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
PYTHONPATH=$pkg:$here/shared python3 "$here/scripts/gpu_train.py" "$out" --data "$csv" "$@" 2>&1 |
    grep -v "it/s" | tee "$out/gpu_train.log"

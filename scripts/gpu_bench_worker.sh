#!/usr/bin/env bash
# The whole GPU-worker measurement in one go (about 3-5 minutes on an H200; budget: 8):
#   scripts/gpu_bench_worker.sh OUT_DIR
# writes into OUT_DIR (5 files: the device tool brings back at most 8):
#   log.txt                    python, torch, torchvision, GPU, CPU count; the GPU-only unit tests
#                              (YuNet and the batched path on CUDA vs CPU); each run's stderr
#   bench_worker_cuda.json     `emostream bench worker --device cuda`: frames/s, faces/s,
#                              p50/p99 per batch, agreement with the CPU path, GPU named in it
#   bench_worker_cuda_b512.json  the same at 512 frames per batch
#   bench_worker_cuda_hostdecode.json  256 a batch, JPEGs decoded by OpenCV threads, not nvJPEG
#   bench_worker_cuda_overlap.json  256 a batch, batch k+1 decoded and detected (second thread,
#                              own CUDA stream) while batch k is classified and its events built
#   (each JSON's device_path.stage_ms_per_batch splits a batch's time: decode, detect, track,
#   crop_classify, events)
#
# Runs from the repository root with the machine's own python3 (a CUDA build of torch and a
# matching torchvision). emostream is put on the path without installing anything from a
# network. The H200 image (Python 3.12, torch 2.11 + torchvision 0.26, OpenCV, scikit-image)
# lacks some of the project's dependencies that the import chain of `bench worker` needs. Bring
# them as wheels in .whl/ (git-ignored: `echo /.whl/ >> .git/info/exclude`), fetched here with
# the versions the CPU venv runs:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
#     --platform manylinux2014_x86_64 -d .whl pydantic==2.14.4 pydantic-core==2.50.5 \
#     pydantic-settings==2.16.3 python-dotenv==1.2.4 typing-inspection==0.4.5 \
#     annotated-types==0.8.0 structlog==26.1.0 aiokafka==0.14.0 async-timeout==5.0.1 \
#     fastapi==0.165.0 starlette==1.10.0 uvicorn==0.55.0 opentelemetry-api==1.45.2
# (`python3 -c "import emostream.bench.worker"` there names any still missing; the log
# shows it.) They are installed into /tmp/site when .whl/ exists. Test it on a CPU first (a few minutes):
#   PYTHON=.venv/bin/python EMOSTREAM_BENCH_DEVICE=cpu EMOSTREAM_BENCH_FRAMES=16 \
#   EMOSTREAM_BENCH_REFERENCE_FRAMES=16 EMOSTREAM_BENCH_STREAMS=4 scripts/gpu_bench_worker.sh /tmp/out
set -uo pipefail

out="${1:?usage: scripts/gpu_bench_worker.sh OUT_DIR}"
mkdir -p "$out"
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
python="${PYTHON:-python3}"
device="${EMOSTREAM_BENCH_DEVICE:-cuda}"
frames="${EMOSTREAM_BENCH_FRAMES:-8192}"
reference="${EMOSTREAM_BENCH_REFERENCE_FRAMES:-1024}"  # 8 frames a stream: tracks confirm
streams="${EMOSTREAM_BENCH_STREAMS:-128}"

if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || { echo "wheel install failed" >&2; exit 1; }
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi

# emostream without pip: its two source roots on the path (one `emostream` namespace).
if ! "$python" -c "import emostream.worker" 2>/dev/null; then
    export PYTHONPATH="$repo/shared:$repo/services${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1 EMOSTREAM_LOG__LEVEL=WARNING

log="$out/log.txt"
{
    "$python" -c "import sys, os, torch; print(sys.version.split()[0], 'torch', torch.__version__,
'cuda', torch.version.cuda, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU',
'cpus', os.cpu_count())"
    "$python" -c "import torchvision; print('torchvision', torchvision.__version__)" 2>&1 | tail -1
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1
} > "$log" 2>&1
cat "$log"

"$python" -c "import emostream.bench.worker" >> "$log" 2>&1 \
    || { echo "emostream does not import here (missing wheels?):"; tail -3 "$log"; exit 1; }
echo "== GPU-only unit tests" >> "$log"
timeout 120 "$python" -m pytest -q -p no:cacheprovider -o addopts="" \
    tests/unit/test_yunet_torch.py tests/unit/test_device_processing_cuda.py >> "$log" 2>&1
echo "GPU tests: $(tail -1 "$log")"

run_bench() {  # name, time limit (s), extra args...
    local name="$1" limit="$2"; shift 2
    echo "== $name $*" >> "$log"
    timeout "$limit" "$python" -m emostream.cli.main bench worker --device "$device" \
        --frames "$frames" --reference-frames "$reference" --streams "$streams" --json "$@" \
        > "$out/$name.json" 2> "$out/stderr.tmp"
    local rc=$?
    cat "$out/stderr.tmp" >> "$log"; rm -f "$out/stderr.tmp"
    echo "$name: rc=$rc $(head -c 600 "$out/$name.json")"
    [ $rc -eq 0 ] || tail -5 "$log"
}
# The first run measures agreement; the others reuse fewer CPU-path frames (fps only).
few=$(( reference / 4 > 0 ? reference / 4 : 1 ))
run_bench "bench_worker_${device}" 180 --device-batch-frames 256
run_bench "bench_worker_${device}_b512" 100 --device-batch-frames 512 --reference-frames "$few"
run_bench "bench_worker_${device}_hostdecode" 100 --device-batch-frames 256 --host-decode \
    --reference-frames "$few"
run_bench "bench_worker_${device}_overlap" 100 --device-batch-frames 256 --overlap \
    --reference-frames "$few"

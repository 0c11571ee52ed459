#!/bin/sh
# Installs the pinned torch into a virtualenv: the CPU build by default, the CUDA one on request.
#   scripts/install_torch.sh PYTHON [cpu|cuda]      (make install TORCH=cuda)
# cpu:  PyTorch's CPU wheel index (about 200 MB; the public index's Linux wheel is the CUDA build,
#       several GB of nvidia-* packages). When that index cannot be reached (offline mirrors,
#       firewalls), falls back to the plain pin from pip's configured index or cache, and says so.
# cuda: the plain pin from the public index, whose Linux wheel is built against CUDA 13.0.
# DRY_RUN=1 prints the pip commands without running them.
set -eu
py=${1:?usage: install_torch.sh PYTHON [cpu|cuda]}
flavour=${2:-cpu}
version=${TORCH_VERSION:-2.13.0}
index=${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}

run() {
    echo "+ $*"
    [ -n "${DRY_RUN:-}" ] || "$@"
}

case "$flavour" in
    cpu)
        # Short timeout, no retries: an unreachable index costs seconds, not minutes.
        if run "$py" -m pip install --quiet --timeout 15 --retries 0 --index-url "$index" "torch==$version"; then
            exit 0
        fi
        echo "install_torch: $index cannot be reached; installing torch==$version from pip's" \
             "configured index instead (on Linux that is the CUDA build unless a CPU wheel is" \
             "there or cached)" >&2
        run "$py" -m pip install --quiet "torch==$version"
        ;;
    cuda)
        run "$py" -m pip install --quiet "torch==$version"
        ;;
    *)
        echo "install_torch: TORCH must be cpu or cuda, not '$flavour'" >&2
        exit 2
        ;;
esac

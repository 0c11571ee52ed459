# syntax=docker/dockerfile:1
# One image for every emostream service: the entry point is the `emostream` CLI and the service is
# the command (`docker run emostream:cpu worker`); compose and Kubernetes pass it per service.
#   docker build --target cpu  -t emostream:cpu  .     (the default target: the last stage)
#   docker build --target cuda -t emostream:cuda .
# Each target installs torch (pinned, from PyTorch's index for the right build) and then the
# project with `pip install .`: only what pyproject.toml declares, into /opt/venv in a build
# stage; the runtime stage copies that venv and runs as an unprivileged user.

# Pinned tags, not digests: pin by digest in your registry mirror for byte-reproducible builds.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm
ARG CUDA_IMAGE=nvidia/cuda:13.0.0-runtime-ubuntu24.04
# Must equal the torch pin in pyproject.toml (tests/deploy/test_deploy.py checks).
ARG TORCH_VERSION=2.13.0
# torch 2.13.0's Linux wheels are built against CUDA 13.0 (its PyPI wheel requires
# cuda-toolkit 13.0.x), so the matching PyTorch index is cu130 and the base is CUDA 13.0. The
# wheel brings its own CUDA libraries; the base image supplies the driver-facing runtime setup.
ARG TORCH_CUDA=cu130
ARG APP_UID=10001

# The project files `pip install .` needs, nothing else (see .dockerignore).
FROM scratch AS source
COPY pyproject.toml README.md /src/
COPY shared /src/shared
COPY services /src/services

# ---- cuda -------------------------------------------------------------------------------------
# Ubuntu 24.04's Python is 3.12 (pyproject: >=3.11); a venv keeps pip off the system Python.
FROM ${CUDA_IMAGE} AS cuda-base
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv libglib2.0-0 libgl1 \
    && rm -rf /var/lib/apt/lists/*

FROM cuda-base AS cuda-build
ARG TORCH_VERSION
ARG TORCH_CUDA
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PATH=/opt/venv/bin:$PATH
RUN python3 -m venv /opt/venv
RUN pip install "torch==${TORCH_VERSION}" \
    --index-url "https://download.pytorch.org/whl/${TORCH_CUDA}"
COPY --from=source /src /src
WORKDIR /src
RUN pip install .

FROM cuda-base AS cuda
ARG APP_UID
RUN useradd --system --uid ${APP_UID} --user-group --create-home --home-dir /home/emostream \
    emostream
COPY --from=cuda-build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    EMOSTREAM_MODEL__DEVICE=cuda EMOSTREAM_WORKER__PATH=device
WORKDIR /home/emostream
USER ${APP_UID}:${APP_UID}
EXPOSE 8000 9102
ENTRYPOINT ["emostream"]
CMD ["--help"]

# ---- cpu (default) ----------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS cpu-base
RUN apt-get update \
    && apt-get install -y --no-install-recommends libglib2.0-0 libgl1 \
    && rm -rf /var/lib/apt/lists/*

FROM cpu-base AS cpu-build
ARG TORCH_VERSION
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
# CPU torch from PyTorch's index: the PyPI build for Linux is the multi-GB CUDA one.
RUN pip install "torch==${TORCH_VERSION}" --index-url https://download.pytorch.org/whl/cpu
COPY --from=source /src /src
WORKDIR /src
RUN pip install .

FROM cpu-base AS cpu
ARG APP_UID
RUN useradd --system --uid ${APP_UID} --user-group --create-home --home-dir /home/emostream \
    emostream
COPY --from=cpu-build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
# No .env here: settings come from the environment (compose, the ConfigMap) only.
WORKDIR /home/emostream
USER ${APP_UID}:${APP_UID}
EXPOSE 8000 9102
ENTRYPOINT ["emostream"]
CMD ["--help"]

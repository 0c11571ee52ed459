# One image for every emostream service; the command picks the service.
FROM python:3.11-slim
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*
# CPU torch from PyTorch's index (the PyPI default is a multi-GB CUDA build).
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
RUN pip install .
RUN useradd --create-home emostream
USER emostream
EXPOSE 8000
ENTRYPOINT ["emostream"]
CMD ["--help"]

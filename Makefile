# Two entry points: `make demo` and `make test`. Both create .venv and install from pyproject.toml.
VENV ?= .venv
PY := $(VENV)/bin/python
DURATION ?= 60
PORT ?= 8000
# torch build: cpu (default, from PyTorch's CPU wheel index) or cuda (`make install TORCH=cuda`).
TORCH ?= cpu
TORCH_VERSION ?= 2.13.0

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	# torch first, pinned, from the index of the chosen build (scripts/install_torch.sh): the
	# public index's Linux wheel is the multi-GB CUDA one.
	TORCH_VERSION=$(TORCH_VERSION) sh scripts/install_torch.sh $(PY) $(TORCH)
	# The extras: training, benchmarks, the demo's broker (the services need none of them).
	$(PY) -m pip install --quiet -e '.[test,lint,train,bench,demo]'
	touch $@

.PHONY: install demo test unit integration lint bench benchmarks
install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/emostream demo --duration $(DURATION) --api-port $(PORT)

test: $(VENV)/.installed
	$(PY) -m pytest

unit: $(VENV)/.installed
	$(PY) -m pytest tests/unit

integration: $(VENV)/.installed
	$(PY) -m pytest tests/integration

# Offline: ruff and mypy come from the venv; their settings are in pyproject.toml.
LINT_PATHS := shared services tests scripts examples clients
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/mypy

bench: $(VENV)/.installed
	$(VENV)/bin/emostream bench classify --json

# Every number in BENCHMARKS.md and MODEL_CARD.md (about 15 minutes on 2 cores); JSON in benchmarks/results/.
benchmarks: $(VENV)/.installed
	scripts/run_benchmarks.sh

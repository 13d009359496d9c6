# fairtat: set-up, build, run and test. Every target installs what is missing and is idempotent.
#
#   make run    install, build, start the dashboard on the embedded default (Fashion-MNIST)
#   make test   install, build, run every test
#   make bench  throughput benchmarks (ours and the PyTorch reference, same libtorch), the
#               dashboard at scale, the Slurm executor with 500 queued jobs
#
# The Python venv that provides libtorch lives in a cache directory keyed by the torch version,
# so fresh clones on the same machine reuse it. Override with FAIRTAT_VENV=/some/dir.

SHELL := /bin/bash
TORCH_VERSION := 2.11.0
FAIRTAT_VENV ?= $(HOME)/.cache/fairtat/torch-$(TORCH_VERSION)
PY := $(FAIRTAT_VENV)/bin/python
VENV_STAMP := $(FAIRTAT_VENV)/.fairtat-ready
APT_PACKAGES := dataset-fashion-mnist
# Browser tests drive Chromium; the Slurm tests start a one-node cluster of their own.
TEST_APT_PACKAGES := chromium chromium-driver slurm-wlm munge
LIBTORCH = $(shell $(PY) -c 'import torch,os; print(os.path.dirname(torch.__file__))' 2>/dev/null)
CARGO_ENV = LIBTORCH=$(LIBTORCH) LIBTORCH_BYPASS_VERSION_CHECK=0 FAIRTAT_PYTHON=$(PY)
ADDR ?= 127.0.0.1:8080

.PHONY: run test bench build deps deps-test venv venv-test apt apt-test train-quick clean-index

deps: apt venv
deps-test: deps apt-test venv-test

# pandas for tests/py/check_compare_csv.py (the compare page's tidy CSV); checked on every run
# so a venv made before it was needed gets it too.
venv-test: venv
	@$(PY) -c 'import pandas' 2>/dev/null || $(PY) -m pip install -q pandas

apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; fi

apt-test:
	@missing=""; for p in $(TEST_APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; fi

venv: $(VENV_STAMP)

$(VENV_STAMP):
	@echo "creating libtorch venv in $(FAIRTAT_VENV) (torch $(TORCH_VERSION), about 4.7 GB, once per machine)"
	python3 -m venv $(FAIRTAT_VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==$(TORCH_VERSION) safetensors numpy pandas
	touch $(VENV_STAMP)

build: deps
	$(CARGO_ENV) cargo build --release

run: build
	./target/release/fairtat serve --addr $(ADDR) --runs runs

train-quick: build
	./target/release/fairtat train --config configs/fmnist-quick-fairtat.toml

test: deps-test
	$(CARGO_ENV) cargo build --release
	@# The debug programs too: tests start `fairtat`, whose `serve` becomes `fairtat-dashboard`
	@# from another crate, which `cargo test` alone does not build.
	$(CARGO_ENV) cargo build --bins
	$(CARGO_ENV) FAIRTAT_REQUIRE_SLURM=1 cargo test --no-fail-fast -- --test-threads=2

bench: deps-test
	$(CARGO_ENV) cargo build --release
	$(CARGO_ENV) cargo run --release --bin fairtat-bench -- --python $(PY) --reference bench/pytorch_reference.py
	$(CARGO_ENV) cargo run --release --bin fairtat-bench-methods
	$(CARGO_ENV) cargo run --release --bin fairtat-bench-server
	$(CARGO_ENV) cargo test --test slurm_bench -- --ignored --nocapture
	@# With a GPU visible: PreAct ResNet-18's step at batch 128 and 512, fp32 and bf16, beside
	@# the reference on the same GPU (bench/gpu_check.sh runs the other GPU checks).
	@if nvidia-smi -L >/dev/null 2>&1; then \
		PY=$(PY) STEPS=bench bench/gpu_check.sh target/release target/gpu-check; \
	else echo "no GPU visible: GPU benchmarks skipped"; fi

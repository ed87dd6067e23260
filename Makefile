# Common tasks. `make help` lists them.
PY ?= python
ARGS ?=

.PHONY: help install train test test-all sweep bench bench-gpu report

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

install:  ## install the package and the test tools (editable)
	$(PY) -m pip install -e ".[dev]"

train:  ## the default run: binenc on digits, CPU, about a minute (ARGS="head=linpen ..." to change)
	$(PY) -m binary_encoding.train $(ARGS)

test:  ## the test suite (the README command; slow tests excluded)
	$(PY) -m pytest -q

test-all:  ## every test, the slow ones included
	$(PY) -m pytest -q -m ""

sweep:  ## 4 heads x 3 seeds on digits, one job after another
	$(PY) -m binary_encoding.train -m head=binenc,linpen,nonlinpen,nopen seed=0,1,2 $(ARGS)

report:  ## tables and figures of a sweep (ARGS=multirun/digits_mlp)
	$(PY) -m binary_encoding.report $(ARGS)

bench:  ## speed against straightforward implementations: metrics + DeepFool, then training (ARGS="--device cuda")
	$(PY) -m benchmarks.bench_metrics $(ARGS)
	$(PY) -m benchmarks.bench_train $(ARGS)

bench-gpu:  ## on a GPU machine: CUDA tests, bench_train, the bare-step floor and jobs-per-GPU packing, outputs in bench_out/
	bash benchmarks/gpu.sh bench_out

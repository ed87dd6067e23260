# Common tasks. `make help` lists them.
PY ?= python
ARGS ?=

.PHONY: help install train test test-all sweep bench bench-gpu report mutation mutation-fresh mutation-map mutation-third mutation-fourth mutation-fifth mutation-sixth mutation-seventh mutation-eighth mutation-ninth

help:  ## list the targets
	@grep -E '^[a-z0-9-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-22s %s\n", $$1, $$2}'

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

mutation:  ## mutation audit: plausible one-line bugs against their test files (ARGS="--category report"; CPU-heavy)
	$(PY) -m benchmarks.mutation.run $(ARGS)

mutation-fresh:  ## the second, independent mutant list (benchmarks/mutation/mutants_fresh.py; same ARGS)
	$(PY) -m benchmarks.mutation.run --list fresh $(ARGS)

mutation-map:  ## which test executes which package line (the default suite once under coverage: 25 min on 2 cores)
	$(PY) -m benchmarks.mutation.covering

mutation-third:  ## the third list (mutants_third.py), each mutant against every test that runs its line (needs mutation-map)
	$(PY) -m benchmarks.mutation.run --list third --jobs 2 --timeout 600 $(ARGS)

mutation-fourth:  ## the fourth list (mutants_fourth.py), the same way (needs mutation-map)
	$(PY) -m benchmarks.mutation.run --list fourth --jobs 2 --timeout 600 $(ARGS)

mutation-fifth:  ## the fifth list (mutants_fifth.py), the same way (needs mutation-map)
	$(PY) -m benchmarks.mutation.run --list fifth --jobs 2 --timeout 600 $(ARGS)

mutation-sixth:  ## the sixth list (mutants_sixth.py, 20 a category), the same way (needs mutation-map)
	$(PY) -m benchmarks.mutation.run --list sixth --jobs 2 --timeout 600 $(ARGS)

mutation-seventh:  ## the seventh list (mutants_seventh.py, 20 a category), the same way (needs mutation-map)
	$(PY) -m benchmarks.mutation.run --list seventh --jobs 2 --timeout 600 $(ARGS)

mutation-eighth:  ## the eighth list (mutants_eighth.py, 20 a category, writers with their own files), the same way
	$(PY) -m benchmarks.mutation.run --list eighth --jobs 2 --timeout 600 $(ARGS)

mutation-ninth:  ## the ninth list (mutants_ninth.py, 20 a category, writers with their own files), the same way
	$(PY) -m benchmarks.mutation.run --list ninth --jobs 2 --timeout 600 $(ARGS)

bench:  ## speed against straightforward implementations: metrics + DeepFool, then training (ARGS="--device cuda")
	$(PY) -m benchmarks.bench_metrics $(ARGS)
	$(PY) -m benchmarks.bench_train $(ARGS)

bench-gpu:  ## on a GPU machine: CUDA tests, bench_train, the bare-step floor and jobs-per-GPU packing, outputs in bench_out/
	bash benchmarks/gpu.sh bench_out

# --- results: every table and figure of docs/results.md, regenerated ---------------------------------------
# 4 heads x 2 learning rates per sweep (CONV_LRS, MLP_LRS, DIGITS_LRS) x 5 seeds for the MNIST-1D conv net
# (CONV_SEEDS: its claims are read seed by seed) and 3 seeds for the others; JOBS jobs at once
# (hydra/launcher=local_parallel, torch threads = cores // JOBS); LATENTS=save_latents=true for the report's
# latent histograms. Sweeps resume: finished jobs in $(MULTIRUN)/<name> are kept (make results-clean starts over).
# Measured: the 72-job version (3 conv seeds) about 21 minutes on 2 cores (load average 1-5); the 5-seed conv
# sweep was not yet timed on a quiet machine (docs/results.md).
JOBS ?= 2
CONV_LRS ?= 1e-3,3e-3
MLP_LRS ?= 1e-3,3e-3
DIGITS_LRS ?= 1e-3,3e-3
MULTIRUN ?= multirun/results
RESULTS ?= docs/results
LATENTS ?= save_latents=true
CONV_SEEDS ?= 0,1,2,3,4
SEEDS ?= 0,1,2
HEADS = head=binenc,linpen,nonlinpen,nopen
SWEEP = $(PY) -m binary_encoding.train -m hydra/launcher=local_parallel hydra.launcher.n_jobs=$(JOBS) \
	logger=csv trainer.enable_progress_bar=false $(LATENTS) $(HEADS)
REPORT = $(PY) -m binary_encoding.report --wandb off
PNG_ONLY = find $(RESULTS) -name '*.pdf' -delete   # the repository keeps the PNG figures only

.PHONY: results results-mnist1d-conv results-mnist1d-mlp results-digits results-clean

results: results-mnist1d-conv results-mnist1d-mlp results-digits  ## every sweep of docs/results.md and its report (JOBS=2)

results-mnist1d-conv:  ## MNIST-1D, 1-D conv ResNet (experiment=mnist1d)
	$(SWEEP) seed=$(CONV_SEEDS) experiment=mnist1d lr=$(CONV_LRS) name=mnist1d_resnet1d hydra.sweep.dir=$(MULTIRUN)/mnist1d_resnet1d
	$(REPORT) $(MULTIRUN)/mnist1d_resnet1d --out $(RESULTS)/mnist1d_resnet1d
	$(PNG_ONLY)

results-mnist1d-mlp:  ## MNIST-1D, MLP (experiment=mnist1d_mlp)
	$(SWEEP) seed=$(SEEDS) experiment=mnist1d_mlp lr=$(MLP_LRS) name=mnist1d_mlp hydra.sweep.dir=$(MULTIRUN)/mnist1d_mlp
	$(REPORT) $(MULTIRUN)/mnist1d_mlp --out $(RESULTS)/mnist1d_mlp
	$(PNG_ONLY)

results-digits:  ## sklearn's digits, MLP (the defaults)
	$(SWEEP) seed=$(SEEDS) lr=$(DIGITS_LRS) metrics_every=5 name=digits_mlp hydra.sweep.dir=$(MULTIRUN)/digits_mlp
	$(REPORT) $(MULTIRUN)/digits_mlp --out $(RESULTS)/digits_mlp
	$(PNG_ONLY)

results-clean:  ## forget the results sweeps' jobs (the next make results trains every job again)
	rm -rf $(MULTIRUN)

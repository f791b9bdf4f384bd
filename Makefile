# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU wheel: an unpinned torch pulls several GB of CUDA wheels.
TORCH := torch==2.13.0
# Fashion-MNIST for tests and benchmarks, when the shared data folder is there.
SKAE_DATA ?= $(abspath ../shared/data)
export SKAE_DATA
PYTEST_ARGS ?=
GPU_CHECK_ARGS ?=

.PHONY: demo test docs test-slow bench bench-speed bench-allocator bench-denoise gpu-check figures clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned: an unpinned torch pulls several GB of CUDA wheels.
	$(BIN)/python -m pip install --quiet $(TORCH)
	# ...and pinned again with every later install, so that no extra can move it.
	$(BIN)/python -m pip install --quiet $(TORCH) -e ".[dev]"
	touch $@

demo: $(BIN)/.installed
	$(BIN)/python -m benchmarks run --profile quick

test: $(BIN)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-slow: $(BIN)/.installed
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

# The HTML site in docs/_build/html, warnings as errors; sphinx-gallery runs examples/.
docs: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet $(TORCH) -e ".[docs]"
	MPLBACKEND=agg $(BIN)/python -m sphinx -W --keep-going -b html docs docs/_build/html

bench: $(BIN)/.installed
	# UMAP and openTSNE join the full profile.
	$(BIN)/python -m pip install --quiet $(TORCH) -e ".[full-benchmarks]"
	$(BIN)/python -m benchmarks run --profile full

figures: $(BIN)/.installed
	$(BIN)/python benchmarks/make_figures.py

bench-speed: $(BIN)/.installed
	# pyod's AutoEncoder joins the comparison.
	$(BIN)/python -m pip install --quiet $(TORCH) -e ".[speed-benchmarks]"
	$(BIN)/python benchmarks/bench_speed.py

bench-allocator: $(BIN)/.installed
	$(BIN)/python benchmarks/bench_allocator.py

bench-denoise: $(BIN)/.installed
	$(BIN)/python benchmarks/bench_denoising.py

# On a lent GPU (issue 21): the gpu tests, the speed rows and the Fashion-MNIST
# marks in at most 8 minutes, into $OUT (the folder the device tool returns).
gpu-check: $(BIN)/.installed
	$(BIN)/python benchmarks/gpu_check.py --out $${OUT:-benchmarks/results/gpu} $(GPU_CHECK_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache docs/_build docs/generated docs/auto_examples

# Two commands set everything up on a fresh machine with Python 3.11, make and git:
#   make train   # create .venv, install, train a digit recognizer on the embedded MNIST
#   make test    # create .venv, install with test extras, run the whole suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.nnscratch-installed
TRAIN_ARGS ?=

.PHONY: train test bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

train: $(STAMP)
	$(BIN)/nnscratch train $(TRAIN_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q

# Benchmarks compare with PyTorch and scikit-learn, which are never dependencies of the
# package: they get their own environment.
BENCH_VENV ?= .bench-venv
BENCH_STAMP := $(BENCH_VENV)/.nnscratch-bench-installed

$(BENCH_STAMP): pyproject.toml
	@test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --disable-pip-version-check torch==2.13.0 threadpoolctl==3.8.0 -e '.[test]'
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	@echo "Benchmark environment ready. Run one with: $(BENCH_VENV)/bin/python bench/<name>.py"

clean:
	rm -rf $(VENV) $(BENCH_VENV) build *.egg-info src/*.egg-info .pytest_cache

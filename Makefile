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

bench: $(STAMP)
	@echo "Benchmarks live in bench/; run one with: $(BIN)/python bench/<name>.py"

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache

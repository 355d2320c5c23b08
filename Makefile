# Two commands set everything up on a fresh machine with Python 3.11, make and git:
#   make train   # create .venv, install, train a digit recognizer on the embedded MNIST
#   make test    # create .venv, install with test extras, run the whole suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.nnscratch-installed
TEST_STAMP := $(VENV)/.nnscratch-test-installed
TRAIN_ARGS ?=

.PHONY: train test serve chromium bench clean

# train and serve need the package with its front ends ('.[all]'); test adds the test tools.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[all]'
	@touch $(STAMP)

$(TEST_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP) $(TEST_STAMP)

train: $(STAMP)
	$(BIN)/nnscratch train $(TRAIN_ARGS)

test: $(TEST_STAMP) chromium
	$(BIN)/python -m pytest -n 2 -q

# The drawing page: http://127.0.0.1:8000 (SERVE_ARGS="--port 8080 --runs runs").
SERVE_ARGS ?=
serve: $(STAMP)
	$(BIN)/nnscratch serve $(SERVE_ARGS)

# The browser tests drive Debian's chromium (Playwright cannot download its own here).
# Installed with apt-get when missing; without root, install it by hand:
#   sudo apt-get update && sudo apt-get install -y chromium
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests (apt-get)"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "error: chromium is missing; run: sudo apt-get update && sudo apt-get install -y chromium" >&2; exit 2; fi; }

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

# Two entry points, each setting itself up: `make demo` and `make test`.
VENV   ?= .venv
PYTHON ?= python3
# The CPU build of PyTorch that the rest of the environment is pinned to; override for CUDA.
TORCH  ?= torch==2.13.0
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e '.[dev,tensorboard,metrics,export,serve]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/gankit demo

# The drawing page's browser test needs Debian's chromium: installed here when missing and apt
# can (root); otherwise that test skips and says why.
test: $(STAMP)
	@command -v chromium >/dev/null 2>&1 || test -x /usr/bin/chromium || \
	  { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
	    echo "installing chromium for tests/test_page_e2e.py" && \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
	    >/dev/null; } || \
	  echo "chromium could not be installed: tests/test_page_e2e.py will skip"
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q

# The inner loop: every test except the learning tests (marked slow: each trains a model for
# hundreds of steps and checks it beats an untrained one) and the benchmark smoke runs; a few
# minutes on 2 cores. `make test` (and CI) still runs everything.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/train_throughput.py

clean:
	rm -rf $(VENV) runs build *.egg-info

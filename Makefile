# Both entry points create or reuse .venv, install what is missing, then run.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.explbench-installed

.PHONY: demo test bench setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q --no-deps tinysoundfont==0.3.7
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

demo: $(STAMP)
	$(VENV)/bin/explbench demo
	@echo ""
	@echo "Next: put explbench on your PATH for this shell, then try a command:"
	@echo "  . $(VENV)/bin/activate"
	@echo "  explbench list"
	@echo "(or call $(VENV)/bin/explbench directly)"

# Two workers, one test file each at a time (module fixtures such as a real run are made once).
test: $(STAMP)
	$(PY) -m pytest -q --ignore=tests/benchmarks -n 2 --dist loadfile

# Speed targets, reported as ratios measured within one run.

bench: $(STAMP)
	$(PY) -m pytest -q -s tests/benchmarks --benchmark-only

clean:
	rm -rf $(VENV) build *.egg-info

# The two commands of the README: `make demo` and `make test`. Both create .venv when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint fmt wheel-check bench clean

$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/avskit report --quick --out runs/report-quick

# ruff, then the installed wheel (outside pytest's budget), then the suite on both cores
test: lint wheel-check
	$(BIN)/python -m pytest -q -n 2

lint: $(STAMP)
	$(BIN)/ruff check .
	bash scripts/lint-imports.sh

fmt: $(STAMP)
	$(BIN)/ruff check --fix .

wheel-check: $(STAMP)
	PYTHON=$(BIN)/python bash scripts/check-wheel.sh

bench: $(STAMP)
	mkdir -p runs
	$(BIN)/python -m pytest benchmarks -q --benchmark-json=runs/bench.json

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache

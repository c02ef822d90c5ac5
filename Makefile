# healthscore: `make run` scores the sample data, `make test` runs the suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test check lint fmt typecheck clean sample bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)  ## score sample_data/ with configs/default.yaml into out/
	$(BIN)/healthscore score -c configs/default.yaml

test: $(STAMP)  ## the whole test suite
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check healthscore tests sample_data bench
	$(BIN)/ruff format --check healthscore tests sample_data bench

fmt: $(STAMP)
	$(BIN)/ruff check --fix healthscore tests sample_data bench
	$(BIN)/ruff format healthscore tests sample_data bench

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test  ## ruff + mypy + tests

sample: $(STAMP)  ## regenerate sample_data/ (seeded, byte-identical)
	$(BIN)/python sample_data/generate.py

SCALE  ?= S
FORMAT ?= parquet
BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)  ## benchmark vs DuckDB and Polars: make bench SCALE=S|M|L FORMAT=parquet|csv
	$(BIN)/python bench/run.py --scale $(SCALE) --format $(FORMAT)

clean:
	rm -rf out .pytest_cache .mypy_cache .ruff_cache

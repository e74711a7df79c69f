# Two commands for a new machine: `make train` and `make test`. Each creates .venv and
# installs the project (pinned ranges from pyproject.toml) the first time.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
ARGS ?=

.PHONY: install train test test-slow test-slurm lint format gallery docs clean-outputs help

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the project with its dependencies

train: $(STAMP) ## Train the default model on the synthetic set (extra overrides: ARGS="...")
	$(BIN)/nuclei-train $(ARGS)

test: $(STAMP) ## Run the test suite: unit tests, then integration tests (not those marked slow)
	$(BIN)/python -m pytest -m "not slow" $(ARGS)

test-slow: $(STAMP) ## Run only the tests marked slow (DDP, native-resolution, cross-validation runs); CI runs both
	$(BIN)/python -m pytest -m slow $(ARGS)

test-slurm: $(STAMP) ## Start a single-node SLURM (scripts/ci/slurm_up.sh, as root) and run the SLURM tests
	bash scripts/ci/slurm_up.sh
	$(BIN)/python -m pytest tests/integration/test_slurm.py $(ARGS)

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check nuclei tests scripts benchmarks
	$(BIN)/ruff format --check nuclei tests scripts benchmarks

format: $(STAMP) ## Format the code with ruff
	$(BIN)/ruff format nuclei tests scripts benchmarks
	$(BIN)/ruff check --fix nuclei tests scripts benchmarks

gallery: $(STAMP) ## Redraw docs/synthetic_gallery.png
	$(BIN)/python scripts/make_gallery.py

docs: $(STAMP) ## Build the documentation site into site/ (offline, warnings are errors)
	$(BIN)/mkdocs build --strict --site-dir site

# Quick start: `make demo` then `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(abspath $(VENV)/bin)
STAMP := $(VENV)/.installed
TORCH := torch==2.13.0
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu
RUN := PATH="$(BIN):$$PATH"

.PHONY: install demo test test-all bench lint format lock clean

install: $(STAMP)

# The CPU build of torch first (a CUDA build is several GB): from a local wheel where pip
# is configured with one, else from the PyTorch CPU index. The package itself accepts any
# recent torch, so HPC users keep their CUDA build.
$(STAMP): pyproject.toml requirements/lock.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python >= 3.11 is needed ($(PYTHON))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --no-index --no-deps "$(TORCH)" 2>/dev/null \
		|| $(BIN)/pip install --no-deps "$(TORCH)" --index-url $(TORCH_CPU_INDEX)
	$(BIN)/pip install -c requirements/lock.txt -e ".[dev]"  # torch's own dependencies come with this
	touch $@

demo: $(STAMP)
	$(RUN) snakemake --cores all
	@$(BIN)/python scripts/demo_summary.py config/demo.yaml

test: $(STAMP)
	$(RUN) python -m pytest -q

bench: $(STAMP)
	@for script in benchmarks/*.py; do echo "# $$script"; $(RUN) python $$script || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check .
	$(RUN) snakemake --lint

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/snakefmt .

lock: $(STAMP)
	{ head -2 requirements/lock.txt; $(BIN)/pip freeze --exclude-editable | grep -viE '^(torch|floecast)='; } > requirements/lock.txt.new
	mv requirements/lock.txt.new requirements/lock.txt

clean:
	rm -rf data models results logs .snakemake

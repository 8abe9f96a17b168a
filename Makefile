# alertlib: two commands do everything on a fresh machine (Python 3.11 and pip only).
#   make study   set up .venv, then run the study on the embedded simulated sky (profile: default)
#   make test    set up .venv, then run the test suite (unit tests + every notebook, tiny parameters)
#   make lab     set up .venv, then open JupyterLab on notebooks/ with the alertlib kernel
# Set-up is idempotent: a stamp keyed on pyproject.toml + requirements.lock skips it when nothing changed.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.alertlib-setup
PROFILE ?= default
PYTEST_ARGS ?=

.PHONY: setup study test lab lint format strip clean

setup:
	@set -e; \
	key=$$(cat pyproject.toml requirements.lock | sha256sum | cut -c1-16); \
	if [ -f $(STAMP) ] && [ "$$(cat $(STAMP))" = "$$key" ] && [ -x $(BIN)/alertlib ]; then \
	  echo "environment up to date ($(VENV), key $$key)"; exit 0; fi; \
	echo "setting up $(VENV) (key $$key) ..."; \
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV); \
	$(BIN)/python -m pip install -q --upgrade pip; \
	$(BIN)/python -m pip install -q -c requirements.lock -e '.[dev]'; \
	$(BIN)/python -m pip install -q --no-deps btsbot==2.0.7; \
	$(BIN)/python -m ipykernel install --sys-prefix --name alertlib --display-name "Python (alertlib)" >/dev/null; \
	if [ -d .git ]; then $(BIN)/nbstripout --install --attributes .gitattributes >/dev/null 2>&1 || true; fi; \
	echo "$$key" > $(STAMP); \
	echo "environment ready: $(VENV)"

study: setup
	$(BIN)/alertlib study --profile $(PROFILE)

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lab: setup
	$(BIN)/python -m alertlib.study.lab

lint: setup
	$(BIN)/ruff check alertlib tests notebooks
	$(BIN)/ruff format --check alertlib tests

format: setup
	$(BIN)/ruff format alertlib tests
	$(BIN)/ruff check --fix alertlib tests

strip: setup
	$(BIN)/nbstripout notebooks/*.ipynb

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache runs

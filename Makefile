# devops-automation: `make demo` (local Airflow + sandbox) and `make test` (the whole suite).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt constraints.txt pyproject.toml | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=

.PHONY: demo test lint format stop install settings system-deps constraints benchmarks clean

demo: install system-deps ## local Airflow (standalone) + sandbox; prints the UI URL and password
	$(BIN)/python include/scripts/demo.py

stop: ## stop everything `make demo` started
	$(BIN)/python include/scripts/demo.py --stop

test: install system-deps lint ## ruff, then the whole test suite (real PostgreSQL, Dovecot, SMTP and the sandbox)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install ## ruff: lint and format check (config in pyproject.toml); fails on any finding
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install ## apply ruff's formatting and safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

install: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# the pins first, then this package editable (no deps: the pins are the tested set) so Airflow finds
# its provider metadata (connection types and forms); its code stays plugins/devops_automation/
$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt -r requirements-dev.txt -c constraints.txt
	$(BIN)/pip install -q --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $@

system-deps: ## install PostgreSQL, Dovecot, aiosmtpd (SMTP sink) and Chromium with apt when missing (as root)
	bash include/scripts/system_deps.sh

settings: install ## apply airflow_settings.yaml to the Airflow in $AIRFLOW_HOME
	PYTHONPATH=plugins $(BIN)/python -m devops_automation.settings_loader airflow_settings.yaml

constraints: ## regenerate constraints.txt from a clean resolve of the requirements
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install -q -r requirements.txt -r requirements-dev.txt
	{ echo "# Lock of every package in a clean resolve of requirements.txt + requirements-dev.txt (Python 3.11)."; \
	  echo "# Regenerate: make constraints   (fresh venv, pip install -r requirements.txt -r requirements-dev.txt, pip freeze)"; \
	  .venv-lock/bin/pip freeze | grep -v -i -E '^(pip|setuptools|wheel)=='; } > constraints.txt
	rm -rf .venv-lock

benchmarks: install ## run every benchmark (each ends with a key=value summary line)
	@for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .demo .pytest_cache

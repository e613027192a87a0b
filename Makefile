# Paydesk: `make run` sets everything up and starts the site; `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP := $(VENV)/.dev-installed
PORT ?= 8000
SANDBOX_PORT ?= 12111

# Development values for `make run` only; a deployment sets its own (see README).
RUN_ENV := PATH=$(CURDIR)/$(VENV)/bin:$$PATH DJANGO_SETTINGS_MODULE=config.settings.base DJANGO_DEBUG=true \
	DJANGO_SECURE_SSL_REDIRECT=false PORT=$(PORT) SANDBOX_PORT=$(SANDBOX_PORT) \
	STRIPE_API_BASE=$${STRIPE_API_BASE-http://127.0.0.1:$(SANDBOX_PORT)} \
	PAYDESK_REFUND_APPROVAL_THRESHOLDS=$${PAYDESK_REFUND_APPROVAL_THRESHOLDS-USD:50,EUR:50,JPY:5000} \
	SANDBOX_WEBHOOK_URL=$${SANDBOX_WEBHOOK_URL:-http://127.0.0.1:$(PORT)/webhooks/stripe/} \
	PAYDESK_SITE_URL=$${PAYDESK_SITE_URL-http://127.0.0.1:$(PORT)} \
	PYTHONUNBUFFERED=1

# `make test` talks to the real services: the environment's URLs, else the local servers.
TEST_DATABASE_URL ?= $(if $(DATABASE_URL),$(DATABASE_URL),postgres://postgres@127.0.0.1:5432/paydesk)
TEST_BROKER_URL ?= $(if $(CELERY_BROKER_URL),$(CELERY_BROKER_URL),redis://127.0.0.1:6379/0)

.PHONY: run test lint bench clean-install-check install install-dev migrate demo clean help

help:
	@echo "make run    set up (venv, install, migrate, demo data) and start web, worker, beat, sandbox"
	@echo "make test   the whole suite against PostgreSQL, Redis, the sandbox and Chromium"
	@echo "make lint   ruff, the migrations check and the import-linter contracts"
	@echo "make bench  the benchmarks under bench/ (results: docs/benchmarks.md)"
	@echo "make clean-install-check  requirements.txt alone in a fresh venv, production settings,"
	@echo "           web + worker + beat on PostgreSQL and Redis, one payment end to end (CI runs it)"

$(RUNTIME_STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(DEV_STAMP): $(RUNTIME_STAMP) requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(RUNTIME_STAMP)
install-dev: $(DEV_STAMP)

migrate: $(RUNTIME_STAMP)
	@mkdir -p var
	$(RUN_ENV) $(PY) manage.py migrate --noinput

demo: migrate
	$(RUN_ENV) $(PY) manage.py seed_demo
	$(RUN_ENV) $(PY) manage.py seed_demo_plans

run: demo
	@echo
	@echo "  Paydesk           http://127.0.0.1:$(PORT)/"
	@echo "  Back office       http://127.0.0.1:$(PORT)/admin/   (superuser: admin / paydesk-admin;"
	@echo "                    Support: support / paydesk-support; Finance: finance / paydesk-finance)"
	@echo "  Customer login    http://127.0.0.1:$(PORT)/accounts/login/   (customer: demo / paydesk-demo)"
	@echo "  Health            http://127.0.0.1:$(PORT)/healthz"
	@echo "  Stripe sandbox    http://127.0.0.1:$(SANDBOX_PORT)/"
	@echo
	$(RUN_ENV) $(VENV)/bin/honcho start -f Procfile

test: $(DEV_STAMP)
	DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) $(PY) tests/preflight.py
	@# pytest exits 5 when a PYTEST_ARGS filter selects nothing: say so, but it is not a failure.
	DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) $(PY) -m pytest $(PYTEST_ARGS); \
	  rc=$$?; if [ $$rc -eq 5 ]; then echo "make test: no tests were collected"; exit 0; fi; exit $$rc

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	@# On an empty in-memory database: the check compares models with migration files, and needs
	@# no server (a DATABASE_URL naming a database that does not exist only printed a warning).
	DJANGO_DEBUG=true DATABASE_URL=sqlite:///:memory: $(PY) manage.py makemigrations --check --dry-run
	@# The layering (pyproject.toml [tool.importlinter]); it is fast enough to skip its cache.
	$(VENV)/bin/lint-imports --no-cache

bench: $(DEV_STAMP)
	@ls bench/*/run.py >/dev/null 2>&1 || { echo "no benchmarks yet"; exit 0; }
	for b in bench/*/run.py; do $(PY) $$b || exit 1; done

# What the Docker image runs, without Docker: PostgreSQL and Redis on 127.0.0.1 (see the script).
clean-install-check:
	bash .ci/clean-install-check

clean:
	rm -rf var staticfiles .pytest_cache

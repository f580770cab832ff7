# The two commands of the README: `make run` (the whole service) and `make test` (the whole suite).
PY := .venv/bin/python
POSTGRES_TEST_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: run test install lint check test-postgres audit model

install:
	@scripts/bootstrap.sh

run: install
	@scripts/ensure_pdf_tools.sh
	@$(PY) scripts/run.py

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	.venv/bin/lint-imports --no-cache

check: install
	$(PY) manage.py check --fail-level WARNING
	$(PY) manage.py makemigrations --check --dry-run

test: install lint check
	@scripts/ensure_chromium.sh
	@scripts/ensure_pdf_tools.sh
	$(PY) -m pytest
	@$(MAKE) --no-print-directory test-postgres

# The database-facing tests once more against the local PostgreSQL, when one answers.
test-postgres: install
	@if $(PY) scripts/pg_ready.py "$(POSTGRES_TEST_URL)"; then \
		DATABASE_URL="$(POSTGRES_TEST_URL)" $(PY) -m pytest -m "not browser and not slow" tests/detector tests/deepfake_site; \
	else \
		echo "test-postgres: SKIPPED - no PostgreSQL answers at $(POSTGRES_TEST_URL)"; \
	fi

# Known vulnerabilities in the pinned requirements. Needs PyPI's JSON API and OSV (internet);
# --strict fails when a package could not be audited, so it never passes without auditing.
audit: install
	$(PY) -m pip_audit -r requirements-dev.txt -r requirements-nodeps.txt --no-deps --disable-pip --strict

# Reproduce the shipped detector (models/default: weights, metrics.json) from the labelled public
# clips in ../shared: train, test on the held-out split (clean and at c40), export. About 40 minutes
# on 2 CPU cores; resumes when interrupted.
model: install
	$(PY) -m ml_core.cli.default_model --no-progress

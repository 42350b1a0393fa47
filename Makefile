# Run `make help` for the list of targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV := $(CURDIR)/scripts/uv
# The real Better Auth issuer the interoperability test runs (Node 20+ and npm).
BETTER_AUTH := backend/tests/interop/better-auth
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 2
export HOST PORT

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

.PHONY: install
install: ## Install the locked dependencies into backend/.venv
	cd backend && $(UV) sync --locked --quiet

.PHONY: run
run: install ## Create the schema and serve with reload on HOST:PORT (SQLite unless DATABASE_URL says otherwise)
	cd backend && $(UV) run --locked python -m todo create-schema
	cd backend && $(UV) run --locked uvicorn todo.main:create_app --factory --reload --host $(HOST) --port $(PORT) --no-access-log

.PHONY: serve
serve: install ## Serve for production: WORKERS processes, no reload, no access log
	@# Multiprocess metrics need an empty directory at each start (see the quickstart).
	@if [ -n "$${PROMETHEUS_MULTIPROC_DIR:-}" ]; then \
		mkdir -p "$$PROMETHEUS_MULTIPROC_DIR" && find "$$PROMETHEUS_MULTIPROC_DIR" -maxdepth 1 -name '*.db' -delete; \
	fi
	cd backend && $(UV) run --locked uvicorn todo.main:create_app --factory \
		--host $(HOST) --port $(PORT) --workers $(WORKERS) --no-access-log

.PHONY: test
test: install node-deps ## Run the whole suite on SQLite and on PostgreSQL
	cd backend && $(UV) run --locked pytest

.PHONY: node-deps
node-deps: $(BETTER_AUTH)/node_modules/.package-lock.json ## Install the locked npm packages of the Better Auth interop test

$(BETTER_AUTH)/node_modules/.package-lock.json: $(BETTER_AUTH)/package-lock.json $(BETTER_AUTH)/package.json
	cd $(BETTER_AUTH) && npm ci --no-audit --no-fund
	touch $@
.PHONY: fuzz
fuzz: install ## Run schemathesis against the live app on SQLite and PostgreSQL (FUZZ_MAX_TIME s each)
	cd backend && $(UV) run --locked python scripts/fuzz.py

.PHONY: format
format: install ## Format and fix what the linter can
	cd backend && $(UV) run --locked ruff format . && $(UV) run --locked ruff check --fix .

.PHONY: lint
lint: install ## Check formatting and lint
	cd backend && $(UV) run --locked ruff format --check . && $(UV) run --locked ruff check .

.PHONY: typecheck
typecheck: install ## mypy --strict
	cd backend && $(UV) run --locked mypy

.PHONY: check
check: lint typecheck test ## The gate: format, lint, types, tests

.PHONY: openapi
openapi: install ## Rewrite the committed OpenAPI contract from the app
	cd backend && $(UV) run --locked python scripts/export_openapi.py

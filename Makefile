# Run `make help` for the list of targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV := $(CURDIR)/scripts/uv
# The real Better Auth issuer the interoperability test runs (Node 20+ and npm).
BETTER_AUTH := backend/tests/interop/better-auth
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 2
# Seconds uvicorn lets in-flight requests finish after SIGTERM before it cancels them.
GRACEFUL_SHUTDOWN_TIMEOUT ?= 20
export HOST PORT
# How `serve` runs uvicorn; `serve-reference` uses the same, so the benchmark compares like with like.
UVICORN_FLAGS = --factory --host $(HOST) --port $(PORT) --workers $(WORKERS) --no-access-log \
	--timeout-graceful-shutdown $(GRACEFUL_SHUTDOWN_TIMEOUT)
# The schema step `bench` runs on its fresh databases (DATABASE_URL names each).
BENCH_SCHEMA ?= alembic upgrade head
BENCH_ARGS ?=
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# The suite's stand-ins for Neon, started by `make test-services`: PostgreSQL that
# accepts TLS only (direct endpoint) and PgBouncer in transaction mode (pooled).
TLS_POSTGRES_URL := postgresql://todo:todo@127.0.0.1:5433/postgres?sslmode=require&channel_binding=require
PGBOUNCER_URL := postgresql://todo:todo@127.0.0.1:6432/postgres?sslmode=require
# The make target `preflight` names in its lines.
SUITE := test

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

.PHONY: install
install: ## Install the locked dependencies into backend/.venv
	cd backend && $(UV) sync --locked --quiet

.PHONY: run
run: migrate ## Migrate, then serve with reload on HOST:PORT (SQLite unless DATABASE_URL says otherwise)
	cd backend && $(UV) run --locked uvicorn todo.main:create_app --factory --reload --host $(HOST) --port $(PORT) --no-access-log

.PHONY: migrate
migrate: install ## Upgrade the schema to the latest migration (on DATABASE_URL_DIRECT when set)
	cd backend && $(UV) run --locked alembic upgrade head

.PHONY: migration
migration: migrate ## Write a migration for model changes: make migration m="add tasks.version"
	@test -n "$(m)" || { echo 'usage: make migration m="what it changes"' >&2; exit 2; }
	cd backend && next=$$(printf '%04d' $$(( $$(ls migrations/versions/*.py | wc -l) + 1 ))) \
		&& $(UV) run --locked alembic revision --autogenerate --rev-id $$next -m "$(m)"

.PHONY: serve
serve: install ## Serve for production: WORKERS processes, no reload, no access log
	@# Multiprocess metrics need an empty directory at each start (docs/operations.md).
	@if [ -n "$${PROMETHEUS_MULTIPROC_DIR:-}" ]; then \
		mkdir -p "$$PROMETHEUS_MULTIPROC_DIR" && find "$$PROMETHEUS_MULTIPROC_DIR" -maxdepth 1 -name '*.db' -delete; \
	fi
	cd backend && $(UV) run --locked uvicorn todo.main:create_app $(UVICORN_FLAGS)

.PHONY: test
test: preflight install node-deps ## Run the whole suite on SQLite and on PostgreSQL
	cd backend && $(UV) run --locked pytest

.PHONY: preflight
preflight: ## Check that what the suite needs answers: PostgreSQL, Redis, Node 20+ (one line each if not)
	@scripts/preflight-test $(SUITE)

.PHONY: node-deps
node-deps: $(BETTER_AUTH)/node_modules/.package-lock.json ## Install the locked npm packages of the Better Auth interop test

# better-sqlite3 compiles from source when no prebuilt binary fits (a minute or two).
$(BETTER_AUTH)/node_modules/.package-lock.json: $(BETTER_AUTH)/package-lock.json $(BETTER_AUTH)/package.json
	cd $(BETTER_AUTH) && npm ci --no-audit --no-fund
	touch $@

# The TypeScript client (docs/client.md): generated from the committed contract, with the
# databases `client-test` runs it against, one after the other.
CLIENT := clients/typescript
CLIENT_TEST_DATABASES ?= sqlite postgresql

.PHONY: client-deps
client-deps: $(CLIENT)/node_modules/.package-lock.json ## Install the client's locked npm packages (the generator, TypeScript, Prettier)

$(CLIENT)/node_modules/.package-lock.json: $(CLIENT)/package-lock.json $(CLIENT)/package.json
	cd $(CLIENT) && npm ci --no-audit --no-fund
	touch $@

.PHONY: client
client: client-deps ## Regenerate the TypeScript client from the committed OpenAPI contract
	cd $(CLIENT) && npm run --silent generate

.PHONY: client-check
client-check: client ## Fail if the committed client differs from a fresh generation; tsc --noEmit (strict); Prettier
	@if [ -n "$$(git status --porcelain -- $(CLIENT)/src/generated)" ]; then \
		git status --short -- $(CLIENT)/src/generated >&2; \
		echo "make client-check: $(CLIENT)/src/generated is not what the contract generates: run make client and commit it" >&2; \
		exit 1; \
	fi
	cd $(CLIENT) && npm run --silent typecheck && npm run --silent format:check

.PHONY: client-test
client-test: install node-deps client-deps ## Run the client against the live server, on each of CLIENT_TEST_DATABASES
	cd $(CLIENT) && for database in $(CLIENT_TEST_DATABASES); do TEST_DATABASE=$$database npm test || exit 1; done

# The browser test (docs/e2e.md): the page of examples/web in Debian's Chromium, driven by
# playwright-core, against the API as `make run` starts it; screenshots land in $(WEB)/artifacts/.
WEB := examples/web
CHROMIUM := /usr/bin/chromium

.PHONY: browser
browser: ## Install Debian's chromium for the browser test if missing (make e2e does)
	@test -x $(CHROMIUM) || { $(SUDO) apt-get update -qq && \
		$(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

.PHONY: web-deps
web-deps: $(WEB)/node_modules/.package-lock.json ## Install the locked npm packages of examples/web (esbuild, playwright-core, TypeScript, Prettier)

$(WEB)/node_modules/.package-lock.json: $(WEB)/package-lock.json $(WEB)/package.json
	cd $(WEB) && npm ci --no-audit --no-fund
	touch $@

.PHONY: e2e
e2e: install node-deps client-deps web-deps browser ## Drive examples/web in headless Chromium: header mode with live sync, JWT mode with Better Auth, /docs offline
	cd $(CLIENT) && npm run --silent build
	cd $(WEB) && npm run --silent format:check && npm run --silent typecheck && npm run --silent build
	cd $(WEB) && npm test
	@echo "make e2e: screenshots, logs and network records in $(WEB)/artifacts/"

.PHONY: fuzz
fuzz: install ## Run schemathesis against the live app on SQLite and PostgreSQL (FUZZ_MAX_TIME s each)
	cd backend && $(UV) run --locked python scripts/fuzz.py

.PHONY: test-services
test-services: ## Start PostgreSQL with TLS on 5433 and PgBouncer on 6432 (needs root)
	scripts/postgres-tls.sh
	scripts/pgbouncer.sh

# Exported to the preflight and to pytest alike (a target's variables reach its prerequisites).
.PHONY: test-tls
test-tls: export TEST_DATABASES := postgresql
test-tls: export TEST_POSTGRES_URL := $(TLS_POSTGRES_URL)
test-tls: SUITE := test-tls
test-tls: test-services preflight install node-deps ## Run the suite on PostgreSQL over TLS, with a Neon-style URL
	cd backend && $(UV) run --locked pytest

.PHONY: test-pgbouncer
test-pgbouncer: export TEST_DATABASES := postgresql
test-pgbouncer: export TEST_POSTGRES_URL := $(PGBOUNCER_URL)
test-pgbouncer: export TEST_POSTGRES_ADMIN_URL := $(TLS_POSTGRES_URL)
test-pgbouncer: export DATABASE_POOL_MODE := transaction
test-pgbouncer: SUITE := test-pgbouncer
test-pgbouncer: test-services preflight install node-deps ## Run the suite through PgBouncer in transaction mode
	cd backend && $(UV) run --locked pytest

.PHONY: format
format: install ## Format and fix what the linter can
	cd backend && $(UV) run --locked ruff format . ../bench && $(UV) run --locked ruff check --fix . ../bench

.PHONY: lint
lint: install ## Check formatting and lint
	cd backend && $(UV) run --locked ruff format --check . ../bench && $(UV) run --locked ruff check . ../bench

.PHONY: typecheck
typecheck: install ## mypy --strict
	cd backend && $(UV) run --locked mypy

.PHONY: imports
imports: install ## Check the import contracts of ARCHITECTURE.md (import-linter)
	cd backend && $(UV) run --locked lint-imports --no-logo

.PHONY: static
static: lint typecheck imports ## Every check but the tests: format, lint, types, imports

.PHONY: check
check: static test ## The gate: static, then the tests

.PHONY: openapi
openapi: install ## Rewrite the committed OpenAPI contract from the app
	cd backend && $(UV) run --locked python scripts/export_openapi.py

# What `bench` reaches PostgreSQL through: --via direct (5432) and --via pgbouncer (the
# stand-ins above, started by bench.run when PgBouncer does not answer; needs root).
BENCH_CONNECTIONS = --tls-postgres '$(TLS_POSTGRES_URL)' --pgbouncer '$(PGBOUNCER_URL)'

.PHONY: bench
bench: install bench-tools ## Seed, then load the service and the bare reference with wrk, direct and through PgBouncer (~42 min, ~50 with one --compare)
	cd backend && PYTHONPATH=$(CURDIR) $(UV) run --locked python -m bench.run \
		--schema "$(BENCH_SCHEMA)" --command "make bench" $(BENCH_CONNECTIONS) $(BENCH_ARGS)

.PHONY: bench-quick
bench-quick: install bench-tools ## The same, one short run per operation (~3 min, ~4 with one --compare), into bench/results/quick.md
	cd backend && PYTHONPATH=$(CURDIR) $(UV) run --locked python -m bench.run \
		--schema "$(BENCH_SCHEMA)" --command "make bench-quick" --runs 1 --duration 5 --warmup 1 \
		--output $(CURDIR)/bench/results/quick.md $(BENCH_CONNECTIONS) $(BENCH_ARGS)

.PHONY: bench-profile
bench-profile: install bench-tools ## py-spy the service, then plain FastAPI, under the mixed load (per request, side by side), into bench/results/profile.md
	cd backend && PYTHONPATH=$(CURDIR) $(UV) run --locked python -m bench.run \
		--schema "$(BENCH_SCHEMA)" --command "make bench-profile" --profile mixed --duration 20 \
		--sqlite-workers 0 --via direct --output $(CURDIR)/bench/results/profile.md \
		$(BENCH_CONNECTIONS) $(BENCH_ARGS)

.PHONY: bench-overhead
bench-overhead: install ## In-process CPU per request of single layers (after make bench-quick has seeded)
	cd backend && PYTHONPATH=$(CURDIR) $(UV) run --locked python -m bench.overhead \
		--database-url postgresql://postgres@127.0.0.1:5432/todo_bench $(BENCH_ARGS)

.PHONY: serve-reference
serve-reference: install ## Serve bench/reference.py (bare asyncpg) exactly as `serve` serves the app
	cd backend && PYTHONPATH=$(CURDIR) $(UV) run --locked uvicorn bench.reference:create_app $(UVICORN_FLAGS)

.PHONY: serve-fastapi-reference
serve-fastapi-reference: install ## Serve bench/plain_fastapi.py (the framework's floor) exactly as `serve` serves the app
	cd backend && PYTHONPATH=$(CURDIR) $(UV) run --locked uvicorn bench.plain_fastapi:create_app $(UVICORN_FLAGS)

.PHONY: bench-tools
bench-tools: ## Install wrk and start the local PostgreSQL on 5432 if needed (the bench targets do)
	@command -v wrk >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq wrk; }
	@scripts/ensure-postgres

# The README's two commands: `make run` and `make test`. Each builds .venv from the lock when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
SYNCED := $(VENV)/.synced-$(UV_VERSION)
VAR := var
DEMO_DB := $(VAR)/demo/demo.sqlite
HOST ?= 127.0.0.1
PORT ?= 8000

DEMO_CATALOG := examples/demo/catalog
export GOVEX_CATALOG_DIR ?= $(DEMO_CATALOG)
export GOVEX_SOURCES ?= {"demo": "$(DEMO_DB)"}
export GOVEX_KEYS_FILE ?= examples/demo/keys.json
export GOVEX_LEDGER_URL ?= sqlite:///$(VAR)/ledger.sqlite
export GOVEX_PACKET_ROOT ?= $(VAR)/packets
export GOVEX_ORIGIN ?= govex.localhost/ledger/demo
LEDGER_KEY := $(VAR)/ledger.key
export GOVEX_LEDGER_KEY_FILE ?= $(LEDGER_KEY)
MASKING_KEY := $(VAR)/masking.key
export GOVEX_MASKING_KEY_FILE ?= $(MASKING_KEY)

.PHONY: run test lint typecheck imports pytest schemas bench clean soak browser

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(SYNCED): pyproject.toml uv.lock | $(BIN)/uv
	$(BIN)/uv sync --locked --inexact --group dev --python $(BIN)/python
	touch $@

$(DEMO_DB): | $(SYNCED)
	$(BIN)/python examples/demo/generate.py $(DEMO_DB)

# The checkpoint signing key of the demo ledger (secret: never commit or share it).
$(LEDGER_KEY): | $(SYNCED)
	@mkdir -p $(@D)
	$(BIN)/govex keys generate $(GOVEX_ORIGIN) --out $@

# The key that masks the demo's sensitive columns (secret: never commit or share it).
$(MASKING_KEY): | $(SYNCED)
	@mkdir -p $(@D)
	$(BIN)/govex keys masking --out $@

run: $(SYNCED) $(DEMO_DB) $(LEDGER_KEY) $(MASKING_KEY)
	@echo
	@echo "govex is starting on http://$(HOST):$(PORT) (demo catalog, embedded SQLite ledger in $(VAR)/)."
	@echo "Get a packet (demo key of alice, tenant acme):"
	@echo
	@echo "  curl -sS -H 'Authorization: Bearer gvx-demo-alice' -H 'Content-Type: application/json' \\"
	@echo "       -d '{\"entry\": \"invoices.unpaid\", \"params\": {\"tenant\": \"acme\"}}' http://$(HOST):$(PORT)/v1/calls"
	@echo
	@echo "Then see README.md, 'A five-minute tour'. API docs: http://$(HOST):$(PORT)/docs"
	@echo "Web console: http://$(HOST):$(PORT)/console (sign in with a demo key, e.g. gvx-demo-bob)"
	@echo
	@# The bundled demo pins this image's /bin/date; elsewhere a copy sealed here is served.
	@catalog="$(GOVEX_CATALOG_DIR)"; \
	if [ "$$catalog" = "$(DEMO_CATALOG)" ]; then \
	  catalog=$$($(BIN)/python examples/demo/machine_catalog.py $(DEMO_CATALOG) $(VAR)/demo/catalog) || exit 1; \
	fi; \
	GOVEX_CATALOG_DIR="$$catalog" exec $(BIN)/govex serve --host $(HOST) --port $(PORT)

lint: $(SYNCED)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: $(SYNCED)
	$(BIN)/mypy

imports: $(SYNCED)
	$(BIN)/lint-imports

# The console's browser tests (tests/e2e/console) drive Debian's chromium and chromium-driver:
# installed here when missing (CI runs as root on a fresh machine), never downloaded otherwise.
CHROMIUM := /usr/bin/chromium
browser:
	@if [ ! -x $(CHROMIUM) ] || [ ! -x /usr/bin/chromedriver ]; then \
	  echo "installing chromium and chromium-driver for the console's browser tests"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver || \
	  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver; }; \
	fi

# Both cores: each worker takes whole test files (their module fixtures start once) and, when
# it needs one, its own PostgreSQL server. PYTEST_WORKERS=0 runs everything in one process.
PYTEST_WORKERS ?= 2
pytest: $(SYNCED) browser
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadfile

test: lint typecheck imports pytest

# The longer variants of the hardening suites (pytest marker `soak`); not part of `make test`.
# Fuzz targets run FUZZ_SOAK_SECONDS seconds each (default 600), all at once, keeping their
# corpus in build/fuzz-corpus/; a failing input is saved in build/fuzz-crashes/.
soak: $(SYNCED)
	$(BIN)/pytest -q -m soak

schemas: $(SYNCED)
	$(BIN)/govex schemas write schemas

clean:
	rm -rf $(VAR)

bench: $(SYNCED)
	$(BIN)/python bench/run.py

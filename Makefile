# Two commands a newcomer needs:  `make run` (set up + start)  and  `make test` (set up + test).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PORT   ?= 8000
HOST   ?= 127.0.0.1

.PHONY: setup run test test-fast web-deps browser-deps lint bench clean

setup: $(STAMP) web-deps

# Everything from the registries: torch pinned to the CPU build (see pyproject.toml).
$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[train,dev]'
	touch $(STAMP)

# onnxruntime-web comes from the npm registry and is served by our own server (no CDN).
web-deps: node_modules/.installed
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Debian's Chromium for the headless browser tests (never `playwright install`).
browser-deps:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "need /usr/bin/chromium: run 'sudo apt-get install -y chromium'"; exit 1; fi; }

run: setup
	$(VENV)/bin/utjima serve --host $(HOST) --port $(PORT)

test: setup browser-deps
	$(PY) -m pytest -q
	node --test tests/js/

test-fast: setup
	$(PY) -m pytest -q -m "not slow and not browser"

lint: setup
	$(VENV)/bin/ruff check utjima tests benchmarks

clean:
	rm -rf $(VENV) node_modules .pytest_cache

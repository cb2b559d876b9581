# Two commands a newcomer needs:  `make run` (set up + start)  and  `make test` (set up + test).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PORT   ?= 8000
HOST   ?= 127.0.0.1

.PHONY: setup run test test-fast web-deps system-deps lint bench clean

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

# Debian packages the tests use: Chromium for the headless browser tests (never
# `playwright install`), Korean and emoji fonts for its screenshots, PostgreSQL for the
# migration test.
system-deps:
	@missing=""; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	dpkg -s fonts-nanum >/dev/null 2>&1 || missing="$$missing fonts-nanum"; \
	dpkg -s fonts-noto-color-emoji >/dev/null 2>&1 || missing="$$missing fonts-noto-color-emoji"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing Debian packages:$$missing (sudo apt-get install -y$$missing)"; \
	       test -x /usr/bin/chromium || exit 1; fi; \
	fi

run: setup
	$(VENV)/bin/utjima serve --host $(HOST) --port $(PORT)

test: setup system-deps
	$(PY) -m pytest -q
	node --test tests/js/

test-fast: setup
	$(PY) -m pytest -q -m "not slow and not browser"

# Every figure in the README comes from these scripts (last stdout line = JSON). They run as
# modules from the repository root, so they can import the dev-only harness/ package.
bench: setup system-deps
	$(PY) -m benchmarks.bench_model
	$(PY) -m benchmarks.bench_browser
	$(PY) -m benchmarks.bench_accuracy
	$(PY) -m benchmarks.bench_photo_faces
	$(PY) -m benchmarks.bench_augment

lint: setup
	$(VENV)/bin/ruff check utjima tests benchmarks tools harness

clean:
	rm -rf $(VENV) node_modules .pytest_cache

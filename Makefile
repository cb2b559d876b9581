# Two commands a newcomer needs:  `make run` (set up + start)  and  `make test` (set up + test).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip install --disable-pip-version-check
# One .venv in layers, a stamp each: `make run` installs only what serving needs (no torch,
# no playwright); `make train` adds the train extra; `make test` / `make setup` add train +
# dev. Each stamp depends on pyproject.toml alone, so `make run` after `make test` installs
# nothing and `make test` after `make run` adds only the extras.
BASE   := $(VENV)/.base
TRAIN  := $(VENV)/.train
DEV    := $(VENV)/.dev
PORT   ?= 8000
HOST   ?= 127.0.0.1
TLS    ?=
ARGS   ?=

.PHONY: setup serve-deps run train test test-fast web-deps system-deps lint bench clean

setup: $(DEV) web-deps

# what `make run` installs, without starting the server (docs/deploy.md)
serve-deps: $(BASE) web-deps

$(PY):
	$(PYTHON) -m venv $(VENV)

# -qq: errors only (serving's first start should print little)
$(BASE): pyproject.toml | $(PY)
	@echo "installing utjima and what the server needs into $(VENV) (once) ..."
	@$(PIP) -qq -e .
	@touch $@

# torch pinned to the CPU build (see pyproject.toml)
$(TRAIN): $(BASE)
	$(PIP) -q -e '.[train]'
	touch $@

$(DEV): $(BASE)
	$(PIP) -q -e '.[train,dev]'
	touch $@ $(TRAIN)

# onnxruntime-web comes from the npm registry and is served by our own server (no CDN).
web-deps: node_modules/.installed
node_modules/.installed: package.json package-lock.json
	@npm ci --no-audit --no-fund --loglevel=error >/dev/null
	@touch $@

# Debian packages the tests use: Chromium for the headless browser tests (never
# `playwright install`), Korean and emoji fonts for its screenshots, PostgreSQL for the
# migration test, coturn (TURN) for the relayed-video test, HAProxy and Redis (with
# PostgreSQL) for the two-process cluster test.
system-deps:
	@missing=""; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	test -x /usr/bin/turnserver || missing="$$missing coturn"; \
	dpkg -s fonts-nanum >/dev/null 2>&1 || missing="$$missing fonts-nanum"; \
	dpkg -s fonts-noto-color-emoji >/dev/null 2>&1 || missing="$$missing fonts-noto-color-emoji"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	test -x /usr/sbin/haproxy || missing="$$missing haproxy"; \
	test -x /usr/bin/redis-server || missing="$$missing redis-server"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing Debian packages:$$missing (sudo apt-get install -y$$missing)"; \
	       test -x /usr/bin/chromium || exit 1; fi; \
	fi

# make run [HOST=0.0.0.0] [PORT=8000] [TLS=1] [ARGS="--rounds-to-win 2 ..."]
run: serve-deps
	@$(VENV)/bin/utjima serve --host $(HOST) --port $(PORT) \
	  $(if $(filter 1 yes true,$(TLS)),--tls) $(ARGS)

# Retrain the shipped model from the shared research archives (tools/train_default.sh).
train: $(TRAIN)
	tools/train_default.sh

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
	$(PY) -m benchmarks.bench_deploy
	$(PY) -m benchmarks.bench_server

lint: setup
	$(VENV)/bin/ruff check utjima tests benchmarks tools harness

clean:
	rm -rf $(VENV) node_modules .pytest_cache

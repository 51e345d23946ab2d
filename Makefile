# Two commands on a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SANDBOX_PORT ?= 8765
# The receiver of the sandbox's pushes in `demo` and `dev` (and of `make receiver`).
RECEIVER_PORT ?= 8787
# The web UI of `make dev`.
DAGSTER_PORT ?= 3000
# The Dagster instance of `demo` and `dev` (their DAGSTER_HOME).
DAGSTER_HOME_DIR ?= $(CURDIR)/.dagster_home
SANDBOX_KEY := sandbox-key
SANDBOX_URL := http://127.0.0.1:$(SANDBOX_PORT)
# What `demo` and `dev` point the project at: the local sandbox, never a real account.
SANDBOX_ENV := SOURCES__MESSAGING__BASE_URL=$(SANDBOX_URL) SOURCES__MESSAGING__API_KEY=$(SANDBOX_KEY)
RECEIVER_URL := http://127.0.0.1:$(RECEIVER_PORT)
# Where `demo` and `dev` land the delivery reports and inbound messages the sandbox pushes.
LANDING_DIR := data/landing
# `demo`'s sends ask for delivery reports: the receiver's URL (the token comes with each demo).
RECEIVER_ENV := SOURCES__MESSAGING__RECEIVER__PUBLIC_URL=$(RECEIVER_URL) \
	SOURCES__MESSAGING__RECEIVER__LANDING_URL=$(LANDING_DIR)
# The sandbox's pushes in `demo`, in seconds: a message moves on within a second, one bound to
# expire within 5 s, and a refused push is tried again every second.
# The demo's recipient: sent three messages, it replies STOP, and a fourth send is refused.
DEMO_TO := +4915112345678
DEMO_PUSHES := --accepted-after 0.2 --changed-after 1 --expired-after 5 --retry-every 1
MATERIALIZE := DAGSTER_HOME=$(DAGSTER_HOME_DIR) $(BIN)/dagster asset materialize -m messaging_assets.definitions

.PHONY: install lock test test-fast test-postgres test-s3 test-ui lint demo dev sandbox receiver clean bench

# .venv is installed from uv.lock, exactly: what the lock says, nothing resolved anew. uv itself
# comes from the package index into .uv/<version>/, so a fresh clone needs only Python and make.
UV_VERSION := 0.13.9
UV_HOME := .uv/$(UV_VERSION)
UV := $(UV_HOME)/bin/uv
# uv takes $(PYTHON), never a Python it would download, and .venv whatever UV_PROJECT_ENVIRONMENT says.
UV_PYTHON_ARGS := --python $(PYTHON) --no-python-downloads
UV_SYNC := UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --frozen --quiet $(UV_PYTHON_ARGS)
STALE_LOCK := uv.lock is out of date with pyproject.toml: run 'make lock' and commit uv.lock

$(UV):
	$(PYTHON) -m venv $(UV_HOME)
	$(UV_HOME)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# After a change to the dependencies in pyproject.toml: `make lock`, then commit uv.lock.
lock: | $(UV)
	$(UV) lock $(UV_PYTHON_ARGS)

$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	@$(UV) lock --check --offline --quiet $(UV_PYTHON_ARGS) || { echo "$(STALE_LOCK)" >&2; exit 1; }
	$(UV_SYNC) --extra dev --extra postgres --extra s3
	@touch $@

install: $(VENV)/.installed

# Two at a time (the tests mostly wait on HTTP, files and processes), but for the `postgres`
# tests: they share one database, and run one after another once the rest has passed.
test: install
	$(BIN)/python -m pytest -m "not postgres" -n 2
	$(BIN)/python -m pytest -m postgres

# The edit-test loop, about half a minute: everything but the tests that run Dagster (marker
# `dagster`: a materialization, sensor or check in-process, seconds each), start processes (`e2e`:
# the CLI, dagster dev, make, the daemon, the bench), drive the browser or need PostgreSQL; four
# at a time, as they mostly wait on HTTP and files. `make test` runs them all.
test-fast: install
	$(BIN)/python -m pytest -m "not e2e and not dagster and not ui and not postgres" -q -n 4

# The `postgres` tests alone, next to a throw-away PostgreSQL server (.ci/postgres starts it and
# removes it afterwards; it needs PostgreSQL's server binaries: apt-get install postgresql).
# `make test` runs them too when MESSAGING_TEST_POSTGRES is set: `.ci/postgres make test`.
test-postgres: install
	.ci/postgres $(BIN)/python -m pytest -m postgres

# The `s3` tests alone, next to a throw-away S3-compatible server (.ci/s3 starts moto's, which the
# dev extra installs, and stops it afterwards). `make test` runs them too when MESSAGING_TEST_S3
# is set: `.ci/s3 make test`.
test-s3: install
	.ci/s3 $(BIN)/python -m pytest -m s3

# The web UI in headless Chromium (Debian's `chromium`; Playwright never downloads a browser).
# Fails rather than skips when the browser is missing: CI installs it (.ci/run).
CHROMIUM ?= /usr/bin/chromium
$(VENV)/.installed-ui: $(VENV)/.installed
	$(UV_SYNC) --extra dev --extra postgres --extra s3 --extra ui
	@touch $@

test-ui: $(VENV)/.installed-ui
	@test -x $(CHROMIUM) || { echo "$(CHROMIUM) missing: apt-get install chromium"; exit 1; }
	CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest -m ui

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The benchmark against the floor (docs/performance.md); ~25 min with the default sizes (the
# 100,000 landed reports, from a folder and from a bucket, take 8 to 15 of them, as busy as the
# machine is).
# Options go in BENCH_ARGS, e.g. `make bench BENCH_ARGS=--quick`; figures: bench/results/latest.json.
# The postgres scenario runs next to a throw-away PostgreSQL (.ci/postgres, fsync on) where
# PostgreSQL's server binaries are installed; elsewhere, or with `BENCH_POSTGRES=`, the bench
# skips it and says so.
PG_CTL := $(firstword $(shell command -v pg_ctl) $(wildcard /usr/lib/postgresql/*/bin/pg_ctl))
BENCH_POSTGRES ?= $(if $(PG_CTL),POSTGRES_FSYNC=on .ci/postgres)
bench: install
	$(BENCH_POSTGRES) $(BIN)/python -m bench.run $(BENCH_ARGS)

sandbox: install
	$(BIN)/python -m messaging_assets.sandbox --port $(SANDBOX_PORT) --api-key $(SANDBOX_KEY)

# The receiver of the provider's callbacks (delivery reports, inbound messages) on 127.0.0.1;
# it needs SOURCES__MESSAGING__RECEIVER__TOKEN. `python -m messaging_assets.receiver urls` prints
# the URLs to register.
receiver: install
	$(BIN)/python -m messaging_assets.receiver --port $(RECEIVER_PORT)

# Starts the sandbox and the receiver of its pushes (with a token made for this demo); has the
# demo's recipient reply START (opted in, whatever an earlier demo left) and loads it; sends it 3
# sandbox messages that ask for delivery reports; has the sandbox push 3 inbound messages, a STOP
# from that recipient and two replies that opt nobody out; waits until the receiver has taken
# every push; materializes every asset with the real CLI; shows a fourth send to the recipient
# refused; prints rows per table and what landed, and stops both. Run it twice: reference counts
# stay the same.
# The Dagster instance of `demo` and `dev`: instance/dagster.yaml (DuckDB writer pool, run
# monitoring, freshness), so demo runs show up in `make dev`'s run history.
$(DAGSTER_HOME_DIR)/dagster.yaml: instance/dagster.yaml
	@mkdir -p $(@D) && cp instance/dagster.yaml $@

# It starts nothing unless its settings files parse and SANDBOX_PORT and RECEIVER_PORT are free:
# it would otherwise load from another sandbox listening there (`make dev`'s).
demo: install $(DAGSTER_HOME_DIR)/dagster.yaml
	@$(BIN)/python -m messaging_assets.dev.preflight --sandbox-port $(SANDBOX_PORT) \
		--receiver-port $(RECEIVER_PORT)
	@: > .demo.log; \
	export $(RECEIVER_ENV) \
		SOURCES__MESSAGING__RECEIVER__TOKEN=$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(32))'); \
	$(BIN)/python -m messaging_assets.receiver --port $(RECEIVER_PORT) \
		> .receiver.log 2>&1 & echo $$! > .receiver.pid; \
	$(BIN)/python -m messaging_assets.sandbox --port $(SANDBOX_PORT) --api-key $(SANDBOX_KEY) $(DEMO_PUSHES) \
		--inbound-url $(RECEIVER_URL)/$$SOURCES__MESSAGING__RECEIVER__TOKEN/inbound-messages \
		> .sandbox.log 2>&1 & echo $$! > .sandbox.pid; \
	trap 'kill $$(cat .sandbox.pid) $$(cat .receiver.pid) 2>/dev/null; rm -f .sandbox.pid .receiver.pid' EXIT; \
	$(BIN)/python -m messaging_assets.sandbox.wait $(SANDBOX_URL) --reply '$(DEMO_TO):START' \
		--pushed && \
	$(MATERIALIZE) --select 'messaging/inbound_messages,messaging/opt_outs' 2>> .demo.log && \
	for n in 1 2 3; do \
		$(SANDBOX_ENV) SOURCES__MESSAGING__SMS__TO=$(DEMO_TO) SOURCES__MESSAGING__SMS__FROM=DEMO \
		SOURCES__MESSAGING__SMS__MESSAGE="messaging-assets demo $$n" \
		$(MATERIALIZE) --select 'messaging/sms' 2>> .demo.log || exit 1; \
	done && \
	$(BIN)/python -m messaging_assets.sandbox.wait $(SANDBOX_URL) --inbound 3 \
		--reply '$(DEMO_TO):STOP' --reply '+4917098765432:Stopp' \
		--reply '+436641234567:please STOP texting' --pushed && \
	$(SANDBOX_ENV) $(MATERIALIZE) --select '*' 2>> .demo.log && \
	echo "A send to $(DEMO_TO), which replied STOP (+4917098765432's 'Stopp' and" \
		"+436641234567's 'please STOP texting' opt nobody out):" && \
	if $(SANDBOX_ENV) SOURCES__MESSAGING__SMS__TO=$(DEMO_TO) SOURCES__MESSAGING__SMS__FROM=DEMO \
		$(MATERIALIZE) --select 'messaging/sms' 2>> .demo.log; then \
		echo "it was sent: opt-outs are not honoured" >&2; exit 1; fi && \
	grep -o 'messaging/sms: [^ ]* opted out: .* Nothing was sent\.' .demo.log | tail -n 1 && \
	$(BIN)/python -m messaging_assets.report && \
	$(BIN)/python -m messaging_assets.receiver.landing $(LANDING_DIR)

# The sandbox, the receiver of its pushes (landing in LANDING_DIR) and `dagster dev` (web UI on
# http://127.0.0.1:$(DAGSTER_PORT)) together, sends asking for delivery reports; Ctrl-C, or
# SIGTERM to make, stops all three within seconds (messaging_assets/dev/supervisor.py). `exec`:
# make passes its SIGTERM to its child, which then is the one process that stops them. It starts
# nothing while a port is taken or another `make dev` runs on DAGSTER_HOME_DIR, and says which
# setting to change.
dev: export DAGSTER_HOME := $(DAGSTER_HOME_DIR)
dev: install $(DAGSTER_HOME_DIR)/dagster.yaml
	@exec $(BIN)/python -m messaging_assets.dev --port $(DAGSTER_PORT) \
		--sandbox-port $(SANDBOX_PORT) --receiver-port $(RECEIVER_PORT) --landing $(LANDING_DIR) \
		--api-key $(SANDBOX_KEY)

clean:
	rm -rf $(VENV) .uv *.egg-info data/*.duckdb data/pipelines .dagster_home .sandbox.pid .sandbox.log \
		.receiver.pid .receiver.log .demo.log

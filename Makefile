# Resilience Fabric: the two front-door commands are `make run` and `make test`.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# -bc: site-packages compiled to bytecode at install (uv does not by default; with PYTHONDONTWRITEBYTECODE
# set, every fresh process then re-compiled pandas & co: ~2 s of a 3 s `qlrf report`).
STAMP := $(VENV)/.installed-bc-$(shell cat requirements.lock pyproject.toml | sha1sum | cut -c1-12)
UV_VERSION := 0.13.8

.PHONY: setup run test test-fast test-clock faults serve stop lint lock bench vcsim clean

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/python -m pip install -q "uv==$(UV_VERSION)" 2>&1 | grep -v "is ignored" || true
	$(BIN)/uv pip sync --compile-bytecode --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --python $(BIN)/python --no-deps -e .
	@rm -f $(VENV)/.installed-*; touch $@

setup: $(STAMP)  ## create .venv from the lock file (idempotent)

run: setup  ## materialise today's partitions on the embedded default and print the fleet report
	$(BIN)/qlrf run

vcsim: ## build the vSphere simulator from Debian's govmomi packages (for connector tests)
	scripts/build-vcsim.sh

test: setup vcsim  ## set up and run the whole suite (PostgreSQL on 127.0.0.1:5432 is used by the postgres tests)
	scripts/system-deps.sh chromium:chromium chromedriver:chromium-driver faketime:faketime  # the real-browser page test; faketime for the clock-skew tests
	$(BIN)/python -m pytest -n 2 --dist loadfile --durations=30

test-fast: setup  ## the fast tests only (no Dagster runs, CLI subprocesses, loopback clouds or PostgreSQL)
	$(BIN)/python -m pytest -n 2 --dist loadfile -m "not slow and not postgres"

# A test that passes today and fails next month is a defect: run the fast tests 400 days ahead and
# 400 days back (libfaketime, also faking the monotonic clock so sleeps stay consistent).
CLOCK_SHIFTS ?= +400d -400d
test-clock: setup  ## the fast tests under shifted clocks (libfaketime from Debian)
	scripts/system-deps.sh faketime:faketime
	@for shift in $(CLOCK_SHIFTS); do echo "== fast tests with the clock at $$shift"; \
	  faketime -f "$$shift" $(BIN)/python -m pytest -n 2 --dist loadfile -m "not slow and not postgres" -p no:cacheprovider \
	  || exit 1; done

faults: setup  ## the fault catalogue (tests/faults): "N attempts, N held" per class and in total
	$(BIN)/python scripts/fault_catalogue.py

# PROFILE=celery: dagster-webserver + dagster-daemon over deploy/celery/dagster.yaml (PostgreSQL: set
# QLRF_POSTGRES_URL) and two Celery workers over RabbitMQ (QLRF_CELERY_BROKER_URL); README: Celery profile.
PROFILE ?= default
serve: setup  ## Dagster UI + daemon (schedules, sensors) and the Streamlit dashboard (PROFILE=celery: workers too)
	$(BIN)/python scripts/serve.py start --profile $(PROFILE)

stop:  ## stop everything `make serve` started
	$(BIN)/python scripts/serve.py stop

lint: setup
	$(BIN)/ruff check .

lock:  ## re-resolve requirements.lock from pyproject.toml (the dagster packages stay pinned together)
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

# The side-by-side ones (issue 18: fresh processes, interleaved with their reference, medians, ratio,
# load average) first: run + start-up, normalize (vs jq), fleet_scoring (vs DuckDB), aws_discovery (vs custodian).
bench: setup vcsim  ## print the benchmark figures the README quotes
	$(BIN)/python bench/bench_run.py
	$(BIN)/python bench/bench_normalize.py
	$(BIN)/python bench/bench_fleet_scoring.py
	$(BIN)/python bench/bench_day.py --keep var/bench-day-estate
	$(BIN)/python bench/bench_aws_discovery.py
	$(BIN)/python bench/bench_gate.py
	$(BIN)/python bench/bench_vsphere_discovery.py
	@for b in bench_remediation bench_sensor_tick bench_api bench_dr_drill; do \
	  test ! -f bench/$$b.py || $(BIN)/python bench/$$b.py; done

clean:
	rm -rf var

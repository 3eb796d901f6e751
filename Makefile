# The two commands a new user needs are `make run` and `make test`; the rest serve them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ADDR   ?= 127.0.0.1:10100
PYTEST_ARGS ?=
# What the builds keep between clones (scripts/services.sh keeps the test services there too).
CACHE  := $(HOME)/.cache/profefe-py

.PHONY: run test test-services bytecode lint docs venv browser services-up services-down services-status proto fixtures bench clean

# The pprof core (native/, Rust) is built by maturin, pyproject.toml's build backend, on install;
# a change to its sources installs again.
NATIVE := native/Cargo.toml native/Cargo.lock $(wildcard native/src/*.rs)
# Its builds (maturin's, and the tests' `cargo test`) are kept outside the checkout, so a new
# clone (CI's every run) links the crates compiled before instead of compiling them again; cargo
# locks the folder while it builds.
export CARGO_TARGET_DIR ?= $(CACHE)/cargo-target
# cargo judges a crate's sources by their times, and every file of a new clone is new: the crate
# was compiled again in each (7-8 s of a new clone's install, 15 s of CPU). So the sources the
# checkout has not changed since its commit get one fixed old time before a build, and their
# content's hash reaches the crate as PROFEFE_NATIVE_SOURCES (native/src/lib.rs reads it): cargo
# compiles the crate again whenever that differs from what it compiled last.
export PROFEFE_NATIVE_SOURCES := $(shell cat $(NATIVE) | sha256sum | cut -c1-16)
NATIVE_OLD_TIMES = if git rev-parse -q --verify HEAD >/dev/null 2>&1; then for f in $(NATIVE); do \
	git diff --quiet HEAD -- "$$f" && touch -d 2000-01-01T00:00:00Z "$$f"; done; fi; true

# uv fills the virtualenv from its cache (~/.cache/uv) in seconds, where pip took 40-50 s in every
# new clone; uv itself is installed once, from PyPI, into a virtualenv of its own beside the other
# caches. It never downloads a Python: the one used is $(PYTHON).
UV_VERSION := 0.13.9
UV_HOME    := $(CACHE)/uv-$(UV_VERSION)
UV         := $(UV_HOME)/bin/uv
export UV_PYTHON_DOWNLOADS := never

$(UV):
	$(PYTHON) -m venv $(UV_HOME)
	$(UV_HOME)/bin/python -m pip install --quiet uv==$(UV_VERSION)

# pyo3's build script asks the interpreter it is handed for its configuration, and every clone's
# virtualenv is a new interpreter path: cargo compiled pyo3 again in each (7 s of a new clone's
# install, 15 s of CPU). An abi3 module (native/Cargo.toml: abi3-py311) needs no more than this
# file says, the same for every clone and every install.
PYO3_CONFIG := $(CACHE)/pyo3-abi3-py311.txt
$(PYO3_CONFIG):
	@mkdir -p $(@D)
	@printf 'implementation=CPython\nversion=3.11\nshared=true\nabi3=true\npointer_width=%s\nbuild_flags=\nsuppress_build_script_link_lines=false\n' \
		"$$($(PYTHON) -c 'import struct; print(struct.calcsize("P") * 8)')" >$@

# The project is built in its own virtualenv (maturin, the build-system's requirement, installed
# there first) rather than in a fresh build environment each time. Its modules are compiled to
# bytecode by `make test` while the services start (see `bytecode`), and by `make run` as they are
# first imported; compiled at install instead, they took 7-8 s of a new clone's install.
BUILD_REQUIRES = $$($(BIN)/python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"])')
$(STAMP): pyproject.toml $(NATIVE) | $(UV) $(PYO3_CONFIG)
	@test -x $(BIN)/python || $(UV) venv --quiet --seed --python $(PYTHON) $(VENV)
	$(UV) pip install --quiet --python $(BIN)/python $(BUILD_REQUIRES)
	@$(NATIVE_OLD_TIMES)
	PYO3_CONFIG_FILE=$(PYO3_CONFIG) $(UV) pip install --quiet --python $(BIN)/python --no-build-isolation -e '.[test]'
	@touch $@

venv: $(STAMP)

# The embedded collector: SQLite + a blob folder under ./data, no servers needed. Where
# PYTHONDONTWRITEBYTECODE is set, each start would compile SQLAlchemy, Flask and the rest from
# source again (1-2 s of CPU), so it may write bytecode.
run: export PYTHONDONTWRITEBYTECODE :=
run: $(STAMP)
	$(BIN)/profefe serve --addr $(ADDR) --data-dir ./data

# Everything: the linters, then unit, contract, integration, browser and end-to-end suites against
# real services; the native core's own tests (cargo test) run from tests/unit/pprof/test_pprof_native.py.
# Most tests wait on services and subprocesses, so they run on TEST_JOBS pytest-xdist workers; the
# fault suite stops and starts the services, so it runs beside them on a set of services of its
# own, FAULTS_PORT_OFFSET ports up (scripts/test.sh). PYTEST_ARGS replaces both with one plain
# pytest run of what it names, against the first set. The linters and the bytecode's compile run
# while the services start.
export TEST_JOBS ?= 2
export FAULTS_PORT_OFFSET ?= 1000
# The suites start about a hundred Python processes (daemons, CLIs, workers); each would compile the
# project's modules and the tests again where PYTHONDONTWRITEBYTECODE is set, so make test lets
# them write bytecode (__pycache__, ignored by git) whatever the environment says.
test: export PYTHONDONTWRITEBYTECODE :=
test: $(STAMP)
	@$(MAKE) --no-print-directory -j3 lint test-services bytecode
	@if [ -n '$(PYTEST_ARGS)' ]; then eval "$$(scripts/services.sh env)" && $(BIN)/python -m pytest $(PYTEST_ARGS); \
	else VENV_PYTHON=$(BIN)/python scripts/test.sh; fi

# mypy's cache is kept beside the other caches: it checks each file's hash, so a new clone reuses
# it (0.6 s instead of 9-13 s).
lint: $(STAMP)
	$(BIN)/ruff check services shared tests bench
	MYPY_CACHE_DIR=$(CACHE)/mypy $(BIN)/mypy

# Every installed module and the project's, compiled while the linters run and the services start:
# left to the suites' processes, the first ones (two xdist workers, the fault suite and its
# daemons, all starting at once) each compiled the same modules from source, 20 core-s or more.
# -qq: some packages ship files that are not Python 3 on purpose.
bytecode: $(STAMP)
	@$(BIN)/python -m compileall -qq -j 2 "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
		services shared tests bench || true

# The services, then the browser: one after the other, as both may run apt-get.
test-services:
	@scripts/services.sh up && scripts/browser.sh

services-up:
	@scripts/services.sh up

# Headless chromium for the UI's browser tests.
browser:
	@scripts/browser.sh

# Both sets: the first, and the fault suite's (started by make test).
services-down:
	@scripts/services.sh down
	@PROFEFE_SERVICES_PORT_OFFSET=$(FAULTS_PORT_OFFSET) scripts/services.sh down

services-status:
	@scripts/services.sh status
	@PROFEFE_SERVICES_PORT_OFFSET=$(FAULTS_PORT_OFFSET) scripts/services.sh status

# Regenerates the checked-in protobuf modules.
proto: $(STAMP)
	@scripts/gen_proto.sh

# Regenerates the real Go profiles under tests/testdata and their text goldens.
fixtures: $(STAMP)
	@scripts/gen_fixtures.sh

# Regenerates the configuration reference in docs/ from the settings the configs declare.
docs: $(STAMP)
	$(BIN)/python scripts/config_reference.py --write

bench: $(STAMP)
	$(BIN)/python bench/pprof_bench.py

clean:
	rm -rf $(VENV) build *.egg-info native/target shared/pprof/_native*.so

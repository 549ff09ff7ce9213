# Every target creates the virtual environments it needs from the pinned files.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEV_STAMP := $(VENV)/.installed
INTEROP := .venv-interop
INTEROP_STAMP := $(INTEROP)/.installed
# make demo's own small venv: the package's runtime dependencies only (at the dev pins).
DEMO := .venv-demo
DEMO_STAMP := $(DEMO)/.installed
PYTEST_ARGS ?=
# The unit suite in two pytest-xdist workers, each test file whole on one worker (its module
# fixtures made once): most tests wait on sockets, subprocesses and timers, so two workers about
# halve the wall time on 2 cores. `make unit PARALLEL=` runs it in one process.
PARALLEL ?= -n 2 --dist loadfile
# Hypothesis profile (tests/conftest.py): "ci" runs the same examples every time.
export HYPOTHESIS_PROFILE ?= ci

.PHONY: test lint unit pythons lowest newcomer interop demo bench soak diagrams proto lock clean
.PHONY: test-loaded test-loaded-interop

$(DEV_STAMP): requirements-dev.txt pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

# The pinned Pipecat's source distribution carries its own eval files (evals/): the interop
# tests validate all of them and run a selection (tests/interop/test_evals_interop.py).
PIPECAT_VERSION := 1.14.0
PIPECAT_EVALS := $(INTEROP)/sdist/pipecat_ai-$(PIPECAT_VERSION)/evals

$(INTEROP_STAMP): tests/interop/requirements.txt
	$(PY) -m venv $(INTEROP)
	$(INTEROP)/bin/pip install -q --disable-pip-version-check -r tests/interop/requirements.txt
	touch $@

# Part of the interop venv step (inside .venv-interop, never committed).
$(PIPECAT_EVALS)/.fetched: $(INTEROP_STAMP)
	$(INTEROP)/bin/pip download -q --disable-pip-version-check --no-deps --no-binary :all: \
		pipecat-ai==$(PIPECAT_VERSION) -d $(INTEROP)/sdist
	tar -xzf $(INTEROP)/sdist/pipecat_ai-$(PIPECAT_VERSION).tar.gz -C $(INTEROP)/sdist \
		pipecat_ai-$(PIPECAT_VERSION)/evals
	touch $@

$(DEMO_STAMP): requirements-dev.txt pyproject.toml
	$(PY) -m venv $(DEMO)
	$(DEMO)/bin/pip install -q --disable-pip-version-check -c requirements-dev.txt -e .
	touch $@

lint: $(DEV_STAMP)
	$(BIN)/ruff check lifecycle transports tests benchmarks examples tools noxfile.py
	$(BIN)/ruff format --check lifecycle transports tests benchmarks examples tools noxfile.py
	$(BIN)/mypy --strict lifecycle transports

# Lint, then the unit and property tests on every supported Python found (noxfile.py, in
# series), at the lowest declared dependency versions, the built wheel as a newcomer installs
# it, then the interop tests.
test: lint pythons lowest newcomer interop

# Unit and property tests on the default interpreter only (the quick loop while developing).
unit: $(DEV_STAMP)
	$(BIN)/pytest -q --ignore=tests/interop $(PARALLEL) $(PYTEST_ARGS)

# One nox session per Python version found (3.11, 3.12, 3.13); a missing one is skipped.
pythons: $(DEV_STAMP)
	$(BIN)/nox --no-color --noxfile noxfile.py -- $(PARALLEL) $(PYTEST_ARGS)

# The unit tests with every direct dependency at its declared floor (nox session "lowest").
lowest: $(DEV_STAMP)
	$(BIN)/nox --no-color --noxfile noxfile.py -s lowest -- $(PARALLEL) $(PYTEST_ARGS)

# The built wheel in a fresh venv outside the checkout: the README quick start, demo and the
# docs' pytest example, as a new user follows them (nox session "newcomer").
newcomer: $(DEV_STAMP)
	$(BIN)/nox --no-color --noxfile noxfile.py -s newcomer

interop: $(DEV_STAMP) $(INTEROP_STAMP) $(PIPECAT_EVALS)/.fetched
	PIPECAT_INTEROP_PYTHON=$(CURDIR)/$(INTEROP)/bin/python PIPECAT_EVALS_DIR=$(CURDIR)/$(PIPECAT_EVALS) \
		$(BIN)/pytest -q tests/interop $(PYTEST_ARGS)

# The unit suite (default Python) while busy processes hold every core (one per core, at
# least 2; stopped at the end whatever happens); it prints the duration and load average.
test-loaded: $(DEV_STAMP)
	$(BIN)/python tests/support/loaded.py unit $(PARALLEL) $(PYTEST_ARGS)

# The interop suite the same way.
test-loaded-interop: $(DEV_STAMP) $(INTEROP_STAMP)
	PIPECAT_INTEROP_PYTHON=$(CURDIR)/$(INTEROP)/bin/python \
		$(BIN)/python tests/support/loaded.py interop $(PYTEST_ARGS)

demo: $(DEMO_STAMP)
	$(DEMO)/bin/pipecat-lifecycle demo

bench: $(DEV_STAMP) $(INTEROP_STAMP)
	PIPECAT_INTEROP_PYTHON=$(CURDIR)/$(INTEROP)/bin/python $(BIN)/python -m benchmarks

soak: $(DEV_STAMP) $(INTEROP_STAMP)
	PIPECAT_INTEROP_PYTHON=$(CURDIR)/$(INTEROP)/bin/python SOAK=1 $(BIN)/pytest -q -m soak tests

# The browser test (tests/test_report_browser.py) and the docs site are part of make test.
.PHONY: chromium docs
test: chromium docs

# Headless Chromium from Debian's packages for the browser test; installed with apt-get when
# missing and we are root (as CI is). Otherwise it says so: the test then skips, or fails in CI.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	else echo "chromium missing: apt-get install chromium (as root) for the browser test"; fi

# The docs site (mkdocs.yml, docs/), built with --strict: a broken reference fails.
docs: $(DEV_STAMP)
	$(BIN)/mkdocs build --strict --site-dir build/site

diagrams: $(DEV_STAMP)
	$(BIN)/pipecat-lifecycle diagram --format mermaid -o diagrams/lifecycle.mmd
	$(BIN)/pipecat-lifecycle diagram --format dot -o diagrams/lifecycle.dot
	$(BIN)/pipecat-lifecycle diagram --format svg -o diagrams/lifecycle.svg

proto: $(DEV_STAMP)
	# The generator Pipecat uses, in a throwaway venv so the pinned protobuf runtime stays.
	$(PY) -m venv /tmp/pipecat-lifecycle-protoc
	/tmp/pipecat-lifecycle-protoc/bin/pip install -q --disable-pip-version-check 'grpcio-tools~=1.67.1'
	/tmp/pipecat-lifecycle-protoc/bin/python -m grpc_tools.protoc -Itransports/_pb --python_out=transports/_pb --pyi_out=transports/_pb transports/_pb/frames.proto

lock: $(DEV_STAMP)
	$(BIN)/pip freeze --exclude-editable | grep -v '^pipecat-lifecycle' > requirements-dev.txt.new
	( echo "# Pinned set the project is tested with (make creates .venv from it). Regenerate: make lock"; cat requirements-dev.txt.new ) > requirements-dev.txt
	rm requirements-dev.txt.new

clean:
	rm -rf $(VENV) $(INTEROP) $(DEMO) .nox .mypy_cache .ruff_cache .pytest_cache

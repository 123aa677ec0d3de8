# The README's two commands: `make quickstart` (main job, CPU demo) and `make test`.
# Both create .venv when missing and install what they need from the pinned set first: the
# quickstart the core and the `data` extra, the tests every extra they exercise.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONSTRAINTS := requirements/constraints.txt
QUICKSTART_EXTRAS := data
TEST_EXTRAS := dev,interop,data,seqio
QUICKSTART_STAMP := $(VENV)/.mmlaws-quickstart
TEST_STAMP := $(VENV)/.mmlaws-test
OUT ?= outputs/quickstart
PYTEST_ARGS ?=
PUBLIC_INDEX := https://pypi.org/simple

.PHONY: quickstart test lint setup setup-test lock lock-check clean

# $(1): the extras to install into .venv with the pinned versions.
define install
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e ".[$(1)]"
	touch $@
endef

setup: $(QUICKSTART_STAMP)
setup-test: $(TEST_STAMP)

$(QUICKSTART_STAMP): setup.cfg setup.py pyproject.toml $(CONSTRAINTS)
	$(call install,$(QUICKSTART_EXTRAS))

$(TEST_STAMP): setup.cfg setup.py pyproject.toml $(CONSTRAINTS)
	$(call install,$(TEST_EXTRAS))

# The main job on this machine's real devices.
quickstart: $(QUICKSTART_STAMP)
	$(BIN)/python -m mmlaws.main --gin_file=configs/quickstart.gin --gin_param="OUTPUT_DIR='$(OUT)'"

lint: $(TEST_STAMP)
	$(BIN)/ruff check .

# The tests on 8 simulated CPU devices (tests/conftest.py sets the same flag).
test: lint
	XLA_FLAGS=--xla_force_host_platform_device_count=8 $(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

# Regenerate the pin file from the installed environment (after a deliberate upgrade): the
# closure of setup.cfg's requirements, without local version labels (requirements/lock.py).
lock: $(TEST_STAMP)
	$(BIN)/python requirements/lock.py --write

# Resolve the pinned set against the public index alone (no local wheels or indexes): a dry run.
lock-check: $(QUICKSTART_STAMP)
	PIP_CONFIG_FILE=/dev/null $(BIN)/python -m pip install --isolated --quiet --dry-run \
	    --ignore-installed --index-url $(PUBLIC_INDEX) -c $(CONSTRAINTS) -e ".[$(TEST_EXTRAS)]"

clean:
	rm -rf $(VENV) outputs .pytest_cache .ruff_cache

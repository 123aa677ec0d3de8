# The README's two commands: `make quickstart` (main job, CPU demo) and `make test`.
# Both create .venv when missing and install the pinned dependency set first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= dev,interop,data,seqio
CONSTRAINTS := requirements/constraints.txt
STAMP := $(VENV)/.mmlaws-installed
OUT ?= outputs/quickstart
PYTEST_ARGS ?=
# 8 simulated CPU devices for every JAX process the tests start.
export XLA_FLAGS ?= --xla_force_host_platform_device_count=8

.PHONY: quickstart test lint setup lock clean

setup: $(STAMP)

$(STAMP): setup.cfg pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e ".[$(EXTRAS)]"
	touch $(STAMP)

quickstart: $(STAMP)
	$(BIN)/python -m mmlaws.main --gin_file=configs/quickstart.gin --gin_param="OUTPUT_DIR='$(OUT)'"

lint: $(STAMP)
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

# Regenerate the pinned set from the current environment (after a deliberate upgrade).
lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^mmlaws' > $(CONSTRAINTS)

clean:
	rm -rf $(VENV) outputs .pytest_cache .ruff_cache

"""Shared test set-up: 8 simulated CPU devices, set before JAX initialises."""

import os

_FLAG = "--xla_force_host_platform_device_count=8"
if _FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _FLAG).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("WANDB_MODE", "disabled")  # tests/test_runlog.py runs it offline
os.environ.setdefault("MPLBACKEND", "Agg")

import pathlib  # noqa: E402

import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def repo_root() -> pathlib.Path:
    return REPO


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
    """The reference data folder beside the checkout (never copied into the project)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data folder {SHARED_DATA} is absent")
    return SHARED_DATA


def pytest_collection_modifyitems(config, items):
    """``FAST=1`` skips the tests marked slow (``make test`` runs them all)."""
    if os.environ.get("FAST") != "1":
        return
    skip = pytest.mark.skip(reason="slow test skipped with FAST=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


FRESH_ENV = "MMLAWS_TEST_IN_FRESH_PROCESS"


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """A test marked ``fresh_process`` runs in a new interpreter of its own (this pytest on its
    node id), not in the long-lived worker: XLA has crashed (abort or segfault, at most once a
    CI run, never reproduced in a fresh process) compiling the study engine's first programs
    in a worker that had already run some hundreds of tests."""
    if pyfuncitem.get_closest_marker("fresh_process") is None or os.environ.get(FRESH_ENV):
        return None
    import subprocess
    import sys

    env = {**os.environ, FRESH_ENV: "1"}
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "-p", "no:randomly", "-n", "0", pyfuncitem.nodeid],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        pytest.fail(f"{pyfuncitem.nodeid} failed in a fresh process (rc {out.returncode}):\n"
                    f"{out.stdout[-6000:]}\n{out.stderr[-3000:]}", pytrace=False)
    return True


@pytest.fixture(scope="module", autouse=True)
def _drop_compiled_programs():
    """After each test module, JAX's compiled programs are dropped. A test worker lives through
    hundreds of tests; every compiled CPU program keeps its code mapped, and a worker that had
    gathered thousands crashed inside XLA (abort or segfault, in whichever test compiled next,
    about three quarters through the suite)."""
    yield
    import gc

    import jax

    jax.clear_caches()
    gc.collect()

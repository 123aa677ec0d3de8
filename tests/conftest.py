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

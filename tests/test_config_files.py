"""Gin files by name: a local path first, then --gin_search_path, then the packaged configs; and
the installed console command finds a packaged config from any folder."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from mmlaws import config_files
from mmlaws.errors import ConfigError

REPO = pathlib.Path(__file__).resolve().parents[1]
SHIPPED = sorted(p.relative_to(REPO / "configs").as_posix()
                 for p in (REPO / "configs").rglob("*.gin"))

needs_install = pytest.mark.skipif(config_files.packaged_dir() is None,
                                   reason="mmlaws is not installed here (bare PYTHONPATH)")


@needs_install
def test_every_config_is_packaged():
    assert config_files.packaged_names() == SHIPPED
    assert "quickstart.gin" in SHIPPED and "study/cpu_hour.gin" in SHIPPED


@needs_install
def test_packaged_config_by_name_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = config_files.packaged_dir()
    assert config_files.find("quickstart.gin") == str(root / "quickstart.gin")
    assert config_files.find("study/cpu_hour.gin") == str(root / "study" / "cpu_hour.gin")
    assert config_files.find("configs/study/cpu_hour.gin") == str(root / "study/cpu_hour.gin")
    with pytest.raises(ConfigError, match=r"--gin_file=nope\.gin: no such file.*quickstart\.gin"):
        config_files.find("nope.gin")


def test_a_local_file_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "quickstart.gin").write_text("# mine\n")
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "study").mkdir()
    (tmp_path / "extra" / "study" / "cpu_hour.gin").write_text("# mine too\n")
    assert config_files.find("quickstart.gin") == "quickstart.gin"
    assert config_files.find("study/cpu_hour.gin", ["extra"]) == os.path.join(
        "extra", "study/cpu_hour.gin")


def _console() -> pathlib.Path:
    path = pathlib.Path(sys.executable).parent / "mmlaws"
    if not path.is_file():
        pytest.skip(f"no console command beside {sys.executable}")
    return path


@needs_install
def test_console_command_runs_a_packaged_config_elsewhere(tmp_path):
    """`mmlaws --gin_file=fit/runs.gin` from a folder with no configs/: the packaged file, its
    own include (configs/fit/csv.gin) resolved among the packaged configs too."""
    N = np.repeat([1e6, 3e6, 1e7, 3e7], 3)
    D = np.tile([1e8, 3e8, 1e9], 4)
    loss = 1.7 + 400 / N**0.34 + 1100 / D**0.28  # Eq. 2
    rows = "\n".join(f"{n:.0f},{d:.0f},{x:.6f}" for n, d, x in zip(N, D, loss, strict=True))
    (tmp_path / "runs.csv").write_text("N,D,loss\n" + rows + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([str(_console()), "--gin_file=fit/runs.gin",
                        "--gin_param=RUNS='runs.csv'", "--gin_param=OUTPUT_DIR='out'",
                        "--gin_param=laws.FitSettings.bootstrap_samples=0",
                        "--gin_param=laws.FitSettings.grid='coarse'"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "out" / "fits.json").is_file()
    missing = subprocess.run([str(_console()), "--gin_file=nope.gin"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=600)
    assert missing.returncode == 2 and "nope.gin: no such file" in missing.stderr

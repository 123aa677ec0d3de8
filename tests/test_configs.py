"""Every shipped gin file parses, with every configurable and parameter it names existing."""

import pathlib

import gin
import pytest

CONFIGS = sorted((pathlib.Path(__file__).resolve().parents[1] / "configs").rglob("*.gin"))


def test_there_are_configs():
    assert CONFIGS, "configs/ holds no gin files"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_gin_file_parses(path, repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)  # includes are relative to the repository root
    if "seqio" in path.read_text():  # its modules import seqio (the seqio extra)
        pytest.importorskip("seqio")
    gin.clear_config()
    try:
        gin.parse_config_files_and_bindings([str(path)], [], finalize_config=False,
                                            skip_unknown=False)
        # The job is bound: the entry point will call it.
        assert "main.run.job" in gin.config_str() or "run.job" in gin.config_str()
    finally:
        gin.clear_config()

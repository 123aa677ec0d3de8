"""Entry-point settings: the opt-in XLA GPU flags (this jaxlib knows each of them) and the
persistent compilation cache."""

import os
import subprocess
import sys
import textwrap

from mmlaws.train import runtime


def test_flags_are_appended_without_overriding_what_is_set():
    env = {"XLA_FLAGS": "--xla_gpu_enable_latency_hiding_scheduler=false --xla_dump_to=/tmp/x"}
    flags = runtime.add_xla_flags(environ=env).split()
    assert flags[:2] == env["XLA_FLAGS"].split()[:2]
    assert "--xla_gpu_enable_latency_hiding_scheduler=true" not in flags
    assert len(flags) == 2 + len(runtime.GPU_XLA_FLAGS) - 1
    runtime.configure(environ=(empty := {}))
    assert "XLA_FLAGS" not in empty
    runtime.configure(environ=(switched := {runtime.ENV_SWITCH: "1"}))
    assert switched["XLA_FLAGS"].split() == list(runtime.GPU_XLA_FLAGS)


def _python(code: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env={**os.environ, **env}, check=False, timeout=300)


def test_xla_accepts_every_gpu_flag():
    """XLA aborts on a flag it does not know; the GPU flags parse on any backend."""
    out = _python("import jax; print(jax.numpy.ones(3).sum())",
                  {"XLA_FLAGS": " ".join(runtime.GPU_XLA_FLAGS), "JAX_PLATFORMS": "cpu"})
    assert out.returncode == 0, out.stderr[-2000:]
    bad = _python("import jax; print(jax.numpy.ones(3).sum())",
                  {"XLA_FLAGS": "--xla_gpu_no_such_flag=true", "JAX_PLATFORMS": "cpu"})
    assert bad.returncode != 0


def test_compilation_cache_is_written(tmp_path):
    out = _python(f"""
        from mmlaws.train import runtime
        runtime.configure(compilation_cache={str(tmp_path)!r})
        import jax
        print(jax.jit(lambda x: x * 2 + 1)(jax.numpy.arange(5.0)))
    """, {"JAX_PLATFORMS": "cpu"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert any(tmp_path.iterdir())


def test_the_entry_point_runs_setup_steps_before_the_job(monkeypatch):
    from mmlaws import main

    calls = []
    main.run(lambda: calls.append("job"), setup=[lambda: calls.append("setup")])
    assert calls == ["setup", "job"]
    monkeypatch.setenv(runtime.ENV_SWITCH, "1")
    monkeypatch.setenv("XLA_FLAGS", "")
    main.run(lambda: None, setup=[runtime.configure])
    assert os.environ["XLA_FLAGS"].split() == list(runtime.GPU_XLA_FLAGS)


def test_study_runs_configure_the_runtime(repo_root):
    import gin

    gin.clear_config()
    try:
        gin.parse_config_files_and_bindings([str(repo_root / "src/mmlaws/study/run.gin")], [])
        assert gin.query_parameter("main.run.setup")[0].selector == "runtime.configure"
    finally:
        gin.clear_config()

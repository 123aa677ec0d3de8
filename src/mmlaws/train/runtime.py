"""Process-wide settings for accelerators, applied before JAX starts its backends.

:func:`configure` runs as a setup step of the entry point (``main.run.setup =
[@runtime.configure]``, as ``study/run.gin`` binds it) before the job:

- **Persistent compilation cache**: ``runtime.configure.compilation_cache = DIR`` (or jax's
  own ``JAX_COMPILATION_CACHE_DIR`` in the environment) keeps compiled steps across processes,
  so a requeued or resumed run does not compile again. :func:`enable_compilation_cache`.
- **XLA GPU flags for H100-class parts**, opt-in (``runtime.configure.gpu_xla_flags = True``
  or ``MMLAWS_GPU_XLA_FLAGS=1`` in the environment): the latency-hiding scheduler and the
  pipelined, combined collectives that MaxText's GPU configurations set. They mostly help when
  collectives overlap compute (FSDP over several GPUs); their effect on mmlaws' steps has
  **not been measured** yet (``benchmarks/device_check.sh`` measures it on one GPU).
  :data:`GPU_XLA_FLAGS`, :func:`add_xla_flags`.
"""

from __future__ import annotations

import os

GPU_XLA_FLAGS = (
    "--xla_gpu_enable_latency_hiding_scheduler=true",
    "--xla_gpu_enable_highest_priority_async_stream=true",
    "--xla_gpu_enable_pipelined_all_gather=true",
    "--xla_gpu_enable_pipelined_reduce_scatter=true",
    "--xla_gpu_enable_pipelined_all_reduce=true",
    "--xla_gpu_enable_while_loop_double_buffering=true",
    "--xla_gpu_all_reduce_combine_threshold_bytes=134217728",
    "--xla_gpu_all_gather_combine_threshold_bytes=134217728",
    "--xla_gpu_reduce_scatter_combine_threshold_bytes=67108864",
    "--xla_gpu_enable_all_gather_combine_by_dim=false",
    "--xla_gpu_enable_reduce_scatter_combine_by_dim=false",
)
ENV_SWITCH = "MMLAWS_GPU_XLA_FLAGS"


def add_xla_flags(flags=GPU_XLA_FLAGS, environ=os.environ) -> str:
    """Append ``flags`` to ``XLA_FLAGS`` (a flag already set there keeps its value); must run
    before JAX initialises its backends. Returns the new ``XLA_FLAGS``."""
    current = environ.get("XLA_FLAGS", "")
    present = {f.split("=")[0] for f in current.split()}
    added = [f for f in flags if f.split("=")[0] not in present]
    environ["XLA_FLAGS"] = " ".join([current, *added]).strip()
    return environ["XLA_FLAGS"]


def enable_compilation_cache(path: str) -> None:
    """Cache compiled programs under ``path`` (every program, however quick to compile)."""
    import jax

    os.makedirs(path, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def configure(*, compilation_cache: str | None = None, gpu_xla_flags: bool = False,
              environ=os.environ) -> None:
    """The entry point's settings: the GPU flags (also when ``MMLAWS_GPU_XLA_FLAGS=1``) and
    the compilation cache."""
    if gpu_xla_flags or environ.get(ENV_SWITCH, "") == "1":
        add_xla_flags(environ=environ)
    if compilation_cache:
        enable_compilation_cache(compilation_cache)

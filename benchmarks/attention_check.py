"""The attention kernels of this platform against the XLA reference, and their speed.

    python benchmarks/attention_check.py                 # on a GPU: cudnn and chunked vs xla
    python benchmarks/attention_check.py --tiny          # CPU smoke: chunked vs xla

For each kernel (:mod:`mmlaws.model.attention`) that runs here (cuDNN on GPU, splash on TPU,
chunked anywhere), on packed rows of random documents: the largest difference from the XLA
kernel's output and from its gradients (bf16 inputs, errors relative to the reference's largest
magnitude), then the time of a forward and backward pass at the 1.3B preset's attention shape
(``--batch`` × 2048 tokens, 32 heads of 64). cuDNN runs twice: with the packed layout's
``max_segments`` at the default and at ``--few_segments``, which measures what describing more
documents per row costs. Kernels that cannot run on this platform are listed as skipped.
"""

from __future__ import annotations

import argparse
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np

from mmlaws.model import attention as A
from mmlaws.model.config import MAX_SEGMENTS


def packed_segments(rng, batch: int, length: int, docs: int) -> np.ndarray:
    """[B, T] segment ids: ``docs`` documents per row at random cuts, padding at some ends."""
    rows = []
    for _ in range(batch):
        cuts = np.sort(rng.choice(np.arange(1, length), size=docs - 1, replace=False))
        row = np.searchsorted(cuts, np.arange(length), side="right") + 1
        row[length - int(rng.integers(0, length // 8)):] = 0
        rows.append(row)
    return np.stack(rows).astype(np.int32)


def kernels(platform: str, max_segments: int, few: int) -> dict:
    out = {"chunked": A.chunked_attention}
    if platform == "gpu":
        out["cudnn"] = functools.partial(A.cudnn_attention, max_segments=max_segments)
        out[f"cudnn max_segments={few}"] = functools.partial(A.cudnn_attention,
                                                             max_segments=few)
    if platform == "tpu":
        out["splash"] = A.splash_attention
    return out


def loss_and_grads(fn):
    """Jitted ``(q, k, v, seg) -> (Σ out², (dq, dk, dv))`` of the kernel ``fn``."""
    f = lambda q, k, v, seg: (fn(q, k, v, seg).astype(jnp.float32) ** 2).sum()  # noqa: E731
    return jax.jit(jax.value_and_grad(f, argnums=(0, 1, 2)))


def compare(fns, shape, docs, rng) -> dict:
    b, t, n, h = shape
    q, k, v = (jnp.asarray(rng.standard_normal(shape), jnp.bfloat16) for _ in range(3))
    seg = jnp.asarray(packed_segments(rng, b, t, docs))
    ref_out = jax.jit(A.xla_attention)(q, k, v, seg).astype(jnp.float32)
    _, ref_grads = loss_and_grads(A.xla_attention)(q, k, v, seg)
    scale = lambda x: float(jnp.abs(x).max())  # noqa: E731
    errors = {}
    for name, fn in fns.items():
        out = jax.jit(fn)(q, k, v, seg).astype(jnp.float32)
        _, grads = loss_and_grads(fn)(q, k, v, seg)
        errors[name] = {
            "out": float(jnp.abs(out - ref_out).max()) / scale(ref_out),
            "grad": max(float(jnp.abs(g.astype(jnp.float32) - r.astype(jnp.float32)).max())
                        / scale(r.astype(jnp.float32)) for g, r in zip(grads, ref_grads,
                                                                       strict=True))}
    return errors


def speed(fns, shape, docs, rng, repeats: int) -> dict:
    b, t, n, h = shape
    q, k, v = (jnp.asarray(rng.standard_normal(shape), jnp.bfloat16) for _ in range(3))
    seg = jnp.asarray(packed_segments(rng, b, t, docs))
    out = {}
    for name, fn in {"xla": A.xla_attention, **fns}.items():
        step = loss_and_grads(fn)
        step(q, k, v, seg)[0].block_until_ready()  # compile
        start = time.perf_counter()
        for _ in range(repeats):
            value, _ = step(q, k, v, seg)
        value.block_until_ready()
        out[name] = (time.perf_counter() - start) / repeats
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="small shapes (a CPU smoke test)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--docs", type=int, default=6, help="documents per row")
    parser.add_argument("--few_segments", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)
    platform, rng = jax.default_backend(), np.random.default_rng(0)
    fns = kernels(platform, MAX_SEGMENTS, args.few_segments)
    skipped = sorted({"cudnn", "splash"} - {name.split()[0] for name in fns})
    print(f"platform {platform} ({jax.devices()[0].device_kind}); kernels {list(fns)}; "
          f"skipped here: {skipped}")
    check_shape = (2, 256, 4, 64) if args.tiny else (3, 1024, 4, 64)
    errors = compare(fns, check_shape, args.docs, rng)
    for name, e in errors.items():
        print(f"  {name:28s} vs xla: output {e['out']:.2e}, gradients {e['grad']:.2e} "
              f"(relative to the largest value; bf16 inputs)")
    timing_shape = (2, 256, 4, 64) if args.tiny else (args.batch, 2048, 32, 64)
    times = speed(fns, timing_shape, args.docs, rng, 2 if args.tiny else args.repeats)
    for name, seconds in times.items():
        print(f"  {name:28s} forward+backward {seconds * 1e3:8.2f} ms at {timing_shape}")
    worst = max(max(e.values()) for e in errors.values())
    print(f"attention: worst relative error {worst:.2e} "
          f"({'PASS' if worst < 2e-2 else 'FAIL'} at 2e-2)")
    return {"errors": errors, "times": times, "worst": worst}


if __name__ == "__main__":
    main()

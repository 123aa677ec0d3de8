"""Causal softmax attention over packed rows, by one of four kernels chosen in the config.

Every kernel computes the same thing: query ``t`` attends to keys ``s ≤ t`` of its own segment
(packed document), softmax scale ``1/√H``. q, k, v: ``[B, T, N, H]``; ``segment_ids``:
``[B, T]`` (1, 2, … per document, 0 on the padding at a row's end) or None (one document per
row). The kernels:

- ``xla``: :func:`jax.nn.dot_product_attention` (XLA): causal, and with segments a ``[B, 1, T, S]``
  mask. It materialises the ``T × S`` scores; it is the reference the others are tested against.
- ``chunked``: plain JAX, queries in blocks of ``CHUNK`` with a custom VJP that keeps only the
  output and the log-sum-exp (Rabe & Staats 2021): no ``T × S`` tensor, no tile skipping. It runs
  anywhere; the memory planner uses it on CPU in place of the fused kernels below, whose memory it
  matches, and the cuDNN kernel uses it for the rare batches it cannot take (below).
- ``cudnn``: cuDNN's flash attention (GPU, 16-bit inputs) with its causal mask, so tiles above the
  diagonal are skipped. Packed rows go in the packed (THD) layout: each run of equal segment ids
  (the padding run too) is one sequence of ``q_seqlen``/``q_offsets``, at most ``max_segments``
  per row (a static size). A batch holding a row with more runs than that is computed by
  ``chunked`` instead (one ``lax.cond``; exact, slower), so the answer never depends on it.
- ``splash``: Pallas splash attention (TPU) with a causal mask and ``SegmentIds``; under a mesh
  it is ``shard_map``-ped over the batch and head axes. T must be a multiple of 128.
- ``auto``: ``cudnn`` on GPU with 16-bit compute, ``splash`` on TPU, ``chunked`` on CPU (its
  hand-written backward pass beats XLA's on two cores: 11-40% more tokens/s for the
  quickstart's widths 16-48 at 128 tokens, 1.5x at 512; ``benchmarks/stack_rows.py``), ``xla``
  elsewhere.

The choice is made once from the config and the platform (:func:`resolve`), printed once per
process, and a kernel that cannot run raises: nothing falls back silently.
"""

from __future__ import annotations

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmlaws.errors import ConfigError

IMPLS = ("auto", "xla", "chunked", "cudnn", "splash")
CHUNK = 512  # query rows per block of the chunked kernel
SPLASH_BLOCK = 512  # splash block sizes (q, kv), capped by the sequence length
_NEG = -1e30  # masked score (finite: a fully masked block must not give NaN)


def resolve(impl: str, platform: str, dtype) -> str:
    """The kernel ``impl`` (one of :data:`IMPLS`) means on ``platform`` for ``dtype`` inputs."""
    if impl not in IMPLS:
        raise ConfigError(f"attention must be one of {IMPLS}, got {impl!r}")
    if impl != "auto":
        return impl
    if platform in ("gpu", "cuda", "rocm") and jnp.dtype(dtype).itemsize == 2:
        return "cudnn"
    if platform == "tpu":
        return "splash"
    return "chunked" if platform == "cpu" else "xla"


@functools.cache
def announce(requested: str, chosen: str, platform: str) -> str:
    """Print the attention kernel in use, once per process and choice."""
    line = f"mmlaws attention: {chosen} (config {requested!r}, platform {platform})"
    print(line, flush=True)
    return line


def causal_segment_mask(segment_ids: jax.Array) -> jax.Array:
    """[B, T] segment ids → [B, 1, T, T] mask: key s ≤ query t and both in the same segment."""
    length = segment_ids.shape[-1]
    causal = jnp.tril(jnp.ones((length, length), dtype=jnp.bool_))  # [T, S]
    same = segment_ids[:, :, None] == segment_ids[:, None, :]  # [B, T, S]
    return (causal[None] & same)[:, None]  # [B, 1, T, S]


def xla_attention(q, k, v, segment_ids):
    """The reference: XLA softmax attention over the full ``T × S`` scores."""
    if segment_ids is None:
        return jax.nn.dot_product_attention(q, k, v, is_causal=True, implementation="xla")
    mask = causal_segment_mask(segment_ids)  # [B, 1, T, S]
    return jax.nn.dot_product_attention(q, k, v, mask=mask, implementation="xla")


# --- chunked: memory-efficient attention in plain JAX --------------------------------------------

def _block_scores(q_blk, k, start, seg_q, seg_k):
    """Masked scores [B, N, C, S] (float32) of one block of C queries starting at ``start``."""
    scale = 1.0 / math.sqrt(q_blk.shape[-1])
    s = jnp.einsum("BCNH,BSNH->BNCS", q_blk, k, preferred_element_type=jnp.float32) * scale
    qpos = start + jnp.arange(q_blk.shape[1])  # [C]
    keep = qpos[:, None] >= jnp.arange(k.shape[1])[None]  # [C, S]
    keep = keep[None] & (seg_q[:, :, None] == seg_k[:, None, :])  # [B, C, S]
    return jnp.where(keep[:, None], s, _NEG)


def _blocks(x, chunk):
    """[B, T, ...] → [T/C, B, C, ...]."""
    b, t = x.shape[:2]
    return x.reshape(b, t // chunk, chunk, *x.shape[2:]).swapaxes(0, 1)


def _unblocks(x):
    """[T/C, B, C, ...] → [B, T, ...]."""
    x = x.swapaxes(0, 1)
    return x.reshape(x.shape[0], -1, *x.shape[3:])


def _chunked_fwd_impl(q, k, v, seg, chunk):
    def one(args):
        q_blk, seg_blk, start = args
        s = _block_scores(q_blk, k, start, seg_blk, seg)  # [B, N, C, S]
        m = s.max(-1, keepdims=True)
        p = jnp.exp(s - m)
        denom = p.sum(-1, keepdims=True)
        o = jnp.einsum("BNCS,BSNH->BCNH", p / denom, v.astype(jnp.float32))
        return o.astype(q.dtype), (m + jnp.log(denom))[..., 0]  # [B,C,N,H], [B,N,C]

    starts = jnp.arange(q.shape[1] // chunk) * chunk
    out, lse = jax.lax.map(one, (_blocks(q, chunk), _blocks(seg, chunk), starts))
    return _unblocks(out), lse  # [B, T, N, H], [T/C, B, N, C]


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def _chunked(q, k, v, seg, chunk):
    return _chunked_fwd_impl(q, k, v, seg, chunk)[0]


def _chunked_fwd(q, k, v, seg, chunk):
    out, lse = _chunked_fwd_impl(q, k, v, seg, chunk)
    return out, (q, k, v, seg, out, lse)


def _chunked_bwd(chunk, res, d_out):
    q, k, v, seg, out, lse = res
    scale = 1.0 / math.sqrt(q.shape[-1])
    delta = jnp.einsum("BTNH,BTNH->BNT", d_out.astype(jnp.float32), out.astype(jnp.float32))
    delta = _blocks(delta.swapaxes(1, 2), chunk).swapaxes(2, 3)  # [T/C, B, N, C]
    f32 = lambda x: x.astype(jnp.float32)  # noqa: E731

    def one(carry, args):
        dk, dv = carry
        q_blk, do_blk, seg_blk, lse_blk, delta_blk, start = args
        p = jnp.exp(_block_scores(q_blk, k, start, seg_blk, seg) - lse_blk[..., None])  # [B,N,C,S]
        dv = dv + jnp.einsum("BNCS,BCNH->BSNH", p, f32(do_blk))
        dp = jnp.einsum("BCNH,BSNH->BNCS", f32(do_blk), f32(v))
        ds = p * (dp - delta_blk[..., None]) * scale
        dq_blk = jnp.einsum("BNCS,BSNH->BCNH", ds, f32(k))
        dk = dk + jnp.einsum("BNCS,BCNH->BSNH", ds, f32(q_blk))
        return (dk, dv), dq_blk.astype(q.dtype)

    zeros = jnp.zeros(k.shape, jnp.float32)
    starts = jnp.arange(q.shape[1] // chunk) * chunk
    (dk, dv), dq = jax.lax.scan(one, (zeros, zeros), (
        _blocks(q, chunk), _blocks(d_out, chunk), _blocks(seg, chunk), lse, delta, starts))
    return _unblocks(dq), dk.astype(k.dtype), dv.astype(v.dtype), None


_chunked.defvjp(_chunked_fwd, _chunked_bwd)


def chunked_attention(q, k, v, segment_ids, chunk: int = CHUNK):
    """Exact attention, ``chunk`` queries at a time, keeping no ``T × S`` tensor."""
    t = q.shape[1]
    chunk = math.gcd(t, chunk)
    seg = jnp.zeros(q.shape[:2], jnp.int32) if segment_ids is None else segment_ids
    return _chunked(q, k, v, seg.astype(jnp.int32), chunk)


# --- cudnn: cuDNN flash attention, packed rows as THD segments -----------------------------------

def segment_runs(segment_ids: jax.Array, max_segments: int):
    """The THD description of packed rows: each run of equal ids (padding included) a sequence.

    Returns ``seqlen [B, M]`` (run lengths, −1 past a row's last run), ``offsets [B, M+1]``
    (run starts, −1 past the last) and ``runs [B]`` (runs per row; rows with more than
    ``M = max_segments`` are described only up to their M-th run). Example, T = 6::

        segment_ids [[1, 1, 2, 2, 2, 0]]  →  seqlen [[2, 3, 1, -1]], offsets [[0, 2, 5, -1, -1]]
    """
    b, t = segment_ids.shape
    m = max_segments
    starts = jnp.concatenate([jnp.ones((b, 1), bool),
                              segment_ids[:, 1:] != segment_ids[:, :-1]], axis=1)  # [B, T]
    runs = starts.sum(1).astype(jnp.int32)  # [B]
    index = jnp.cumsum(starts, axis=1) - 1  # [B, T] the run of each position
    slot = jnp.where(starts & (index < m), index, m)  # [B, T]; slot m collects the rest
    pos = jnp.broadcast_to(jnp.arange(t, dtype=jnp.int32), (b, t))
    first = jnp.full((b, m + 1), t, jnp.int32).at[jnp.arange(b)[:, None], slot].min(pos)
    valid = jnp.arange(m)[None] < jnp.minimum(runs, m)[:, None]  # [B, M]
    ends = jnp.concatenate([first[:, 1:m], jnp.full((b, 1), t, jnp.int32)], axis=1)  # [B, M]
    seqlen = jnp.where(valid, ends - first[:, :m], -1)
    offsets = jnp.concatenate([jnp.where(valid, first[:, :m], -1),
                               jnp.full((b, 1), -1, jnp.int32)], axis=1)
    return seqlen.astype(jnp.int32), offsets.astype(jnp.int32), runs


def cudnn_attention(q, k, v, segment_ids, max_segments: int):
    """cuDNN flash attention, causal; packed rows as up to ``max_segments`` THD runs per row."""
    from jax._src.cudnn import fused_attention_stablehlo as cudnn  # GPU-only kernel

    if segment_ids is None:
        return jax.nn.dot_product_attention(q, k, v, is_causal=True, implementation="cudnn")
    seqlen, offsets, runs = segment_runs(segment_ids, max_segments)

    def packed(q, k, v, segment_ids):
        return cudnn.dot_product_attention(
            q, k, v, q_seqlen=seqlen, kv_seqlen=seqlen, q_offsets=offsets, kv_offsets=offsets,
            scale=1.0 / math.sqrt(q.shape[-1]), mask_type=cudnn.MaskType.PADDING_CAUSAL,
            qkv_layout="BTNH")

    fits = jnp.all(runs <= max_segments)
    return jax.lax.cond(fits, packed, chunked_attention, q, k, v, segment_ids)


# --- splash: Pallas splash attention on TPU ------------------------------------------------------

def _splash_kernel(length: int, heads: int, interpret: bool):
    from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_kernel as sk
    from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_mask as sm

    if length % 128:
        raise ConfigError(f"attention='splash' needs a sequence length that is a multiple of "
                          f"128, got {length}")
    block = min(SPLASH_BLOCK, length)
    sizes = sk.BlockSizes(block_q=block, block_kv=block, block_kv_compute=block,
                          block_q_dkv=block, block_kv_dkv=block, block_kv_dkv_compute=block,
                          block_q_dq=block, block_kv_dq=block)
    mask = sm.MultiHeadMask([sm.CausalMask((length, length)) for _ in range(heads)])
    kernel = sk.make_splash_mha(mask, block_sizes=sizes, head_shards=1, q_seq_shards=1,
                                residual_checkpoint_name="attention_lse", interpret=interpret)
    return kernel, sk.SegmentIds


def splash_attention(q, k, v, segment_ids, interpret: bool = False):
    """Splash attention (Pallas; ``interpret=True`` runs it on CPU for tests)."""
    seg = jnp.ones(q.shape[:2], jnp.int32) if segment_ids is None else segment_ids

    def local(q, k, v, seg):  # [b, T, n, H] on one device
        kernel, segment_ids_type = _splash_kernel(q.shape[1], q.shape[2], interpret)
        scaled = q / jnp.asarray(math.sqrt(q.shape[-1]), q.dtype)
        to_nth = lambda x: x.transpose(0, 2, 1, 3)  # noqa: E731  [b, n, T, H]
        out = jax.vmap(lambda q1, k1, v1, s1: kernel(q1, k1, v1, segment_ids=segment_ids_type(
            q=s1, kv=s1)))(to_nth(scaled), to_nth(k), to_nth(v), seg)
        return to_nth(out)

    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or mesh.size == 1:
        return local(q, k, v, seg.astype(jnp.int32))
    from jax.sharding import PartitionSpec as P

    qkv = P(*nn.logical_to_mesh_axes(("batch", "length", "heads", "kv")))
    rows = P(*nn.logical_to_mesh_axes(("batch", "length")))
    return jax.shard_map(local, mesh=mesh, in_specs=(qkv, qkv, qkv, rows), out_specs=qkv,
                         check_vma=False)(q, k, v, seg.astype(jnp.int32))


def attend(q, k, v, segment_ids, impl: str, *, max_segments: int):
    """Causal attention by the kernel ``impl`` (:func:`resolve`'s answer or ``auto``).

    Rows of one token (the model's initialisation traces one) attend to themselves: ``v``.
    """
    if q.shape[1] == 1:
        return v
    platform = jax.default_backend()
    chosen = resolve(impl, platform, q.dtype)
    announce(impl, chosen, platform)
    if chosen == "xla":
        return xla_attention(q, k, v, segment_ids)
    if chosen == "chunked":
        return chunked_attention(q, k, v, segment_ids)
    if chosen == "cudnn":
        return cudnn_attention(q, k, v, segment_ids, max_segments)
    return splash_attention(q, k, v, segment_ids)


__all__ = ["IMPLS", "attend", "causal_segment_mask", "chunked_attention", "cudnn_attention",
           "resolve", "segment_runs", "splash_attention", "xla_attention"]

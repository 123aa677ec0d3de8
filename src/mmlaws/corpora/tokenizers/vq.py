"""Image tokenizers: learned vector quantisers with spatial reduction 8 (paper §4.2, A.3.1).

An ``H×W`` RGB image becomes an ``(H/8)×(W/8)`` grid of codebook indices, read row-major into
one document ``<image> code … code </image>`` whose codes sit in the layout's image range.
The paper's tokenizer (VQGAN-MAS: f8, 8,192 codes) is a pretrained model we do not have; two
trainers learn a codebook from the local images instead, behind one interface:

- :class:`KMeansTrainer` (the fast default): k-means over the 8×8×3 pixel patches
  (mini-batch k-means with k-means++ seeding, numpy, seeded). Encoding is nearest-centroid
  search over the 192-dimensional patches; decoding pastes the centroids back.
- :class:`VQVAETrainer`: a small VQ-VAE in Flax. A conv encoder with three stride-2
  downsamplings gives one ``latent_dim`` vector per 8×8 cell, quantised to the nearest of
  ``codebook_size`` learned vectors (straight-through gradients, codebook loss and
  commitment loss as in van den Oord et al. 2017; dead codes re-seeded from encoder outputs),
  then a conv-transpose decoder. Trained with optax Adam on the pixel MSE.

Both return an :class:`ImageTokenizer`::

    tok = KMeansTrainer(codebook_size=layout.image_codes).fit(images)  # [B, H, W, 3] uint8
    codes = tok.encode(images)                                         # [B, H/8, W/8] int32
    recon = tok.decode(codes)                                          # [B, H, W, 3] uint8
    ids = tok.document(codes[0], layout)  # [<image>, image ids…, </image>]
    tok.save(path); load(path).fingerprint() == tok.fingerprint()

Pixel units: images are uint8 in ``[0, 255]``; the models and :func:`reconstruction_error` work
in ``[0, 1]`` (value / 255). jax and flax are imported only by the VQ-VAE.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import os
import time

import numpy as np

from mmlaws.data.vocab import VocabLayout

REDUCTION = 8  # spatial reduction: one code per 8×8 pixel cell, as the paper's f8 tokenizer
FORMAT = "mmlaws-image-tokenizer/1"


def check_images(images) -> np.ndarray:
    """``images`` as a uint8 array ``[B, H, W, 3]`` with H and W multiples of 8, else ValueError."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 [B, H, W, 3], got {images.dtype} {images.shape}")
    if images.shape[1] % REDUCTION or images.shape[2] % REDUCTION or images.shape[1] == 0:
        raise ValueError(
            f"image height and width must be positive multiples of {REDUCTION}, "
            f"got {images.shape[1]}×{images.shape[2]}"
        )
    return images


def to_patches(images: np.ndarray) -> np.ndarray:
    """uint8 ``[B, H, W, 3]`` → float32 patches ``[B, H/8, W/8, 192]`` in [0, 1] (row-major)."""
    b, h, w, _ = images.shape
    r = REDUCTION
    x = images.reshape(b, h // r, r, w // r, r, 3).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h // r, w // r, r * r * 3).astype(np.float32) / 255.0


def from_patches(patches: np.ndarray) -> np.ndarray:
    """float patches ``[B, h, w, 192]`` in [0, 1] → uint8 images ``[B, 8h, 8w, 3]``."""
    b, h, w, _ = patches.shape
    r = REDUCTION
    x = patches.reshape(b, h, w, r, r, 3).transpose(0, 1, 3, 2, 4, 5).reshape(b, h * r, w * r, 3)
    return to_uint8(x)


def to_uint8(x) -> np.ndarray:
    """Floats in [0, 1] → uint8 [0, 255] (clipped, rounded)."""
    return np.clip(np.rint(np.asarray(x, np.float32) * 255.0), 0, 255).astype(np.uint8)


def reconstruction_error(tokenizer: ImageTokenizer, images, batch_size: int = 256) -> dict:
    """Mean squared error and PSNR of ``decode(encode(images))``, pixels in [0, 1].

    Returns ``{"mse": float, "psnr": float (dB, 10·log10(1 / mse)), "images": int}``; the MSE
    is averaged over every pixel and channel of every image.
    """
    images = check_images(images)
    total = 0.0
    for i in range(0, len(images), batch_size):
        x = images[i : i + batch_size]
        y = tokenizer.decode(tokenizer.encode(x))
        total += float(np.sum((x.astype(np.float64) - y.astype(np.float64)) ** 2)) / 255.0**2
    mse = total / images.size
    return {"mse": mse, "psnr": 10.0 * math.log10(1.0 / max(mse, 1e-12)), "images": len(images)}


class ImageTokenizer:
    """A trained image quantiser: ``encode``/``decode`` between images and code grids.

    Subclasses set ``kind``, ``codebook_size`` and ``config`` (a JSON-able dict) and implement
    :meth:`encode`, :meth:`decode` and :meth:`arrays` (the named arrays that define them).
    """

    kind: str = ""
    reduction: int = REDUCTION
    codebook_size: int
    config: dict

    def encode(self, images) -> np.ndarray:
        """uint8 ``[B, H, W, 3]`` (H, W multiples of 8) → int32 codes ``[B, H/8, W/8]``."""
        raise NotImplementedError

    def decode(self, codes) -> np.ndarray:
        """int codes ``[B, h, w]`` in ``[0, codebook_size)`` → uint8 images ``[B, 8h, 8w, 3]``."""
        raise NotImplementedError

    def arrays(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    # -- token ids ----------------------------------------------------------------------------

    def document(self, codes, layout: VocabLayout) -> np.ndarray:
        """One image's codes ``[h, w]`` → int32 ``[h·w + 2]``.

        The document is ``<image>``, the codes' global ids row-major, ``</image>``.
        """
        codes = np.asarray(codes)
        if codes.ndim != 2:
            raise ValueError(f"one image's codes must be [h, w], got shape {codes.shape}")
        if self.codebook_size > layout.image_codes:
            raise ValueError(
                f"codebook of {self.codebook_size} codes does not fit the layout's "
                f"{layout.image_codes} image codes"
            )
        ids = layout.image_id(codes.reshape(-1))
        return np.concatenate([[layout.image_begin_id], ids, [layout.image_end_id]]).astype(
            np.int32
        )

    def documents(self, images, layout: VocabLayout, batch_size: int = 256) -> list[np.ndarray]:
        """Encode uint8 images ``[B, H, W, 3]`` into ``B`` documents (see :meth:`document`)."""
        images = check_images(images)
        out = []
        for i in range(0, len(images), batch_size):
            out.extend(self.document(c, layout) for c in self.encode(images[i : i + batch_size]))
        return out

    # -- persistence --------------------------------------------------------------------------

    def fingerprint(self) -> str:
        """16 hex digits of SHA-256 over the kind, config and every array (names, shapes, bytes)."""
        h = hashlib.sha256(f"{FORMAT}|{self.kind}|".encode())
        h.update(json.dumps(self.config, sort_keys=True).encode())
        for name, value in sorted(self.arrays().items()):
            value = np.ascontiguousarray(value)
            h.update(f"|{name}|{value.dtype.str}|{value.shape}|".encode())
            h.update(value.tobytes())
        return h.hexdigest()[:16]

    def save(self, path: str | os.PathLike) -> None:
        """Write an ``.npz`` (config as JSON plus the arrays); atomic (temporary file, rename)."""
        path = os.fspath(path)
        meta = {"format": FORMAT, "kind": self.kind, "config": self.config}
        buf = io.BytesIO()
        np.savez(
            buf,
            __meta__=np.frombuffer(json.dumps(meta).encode(), np.uint8),
            **{f"a/{k}": v for k, v in self.arrays().items()},
        )
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(buf.getvalue())
        os.replace(tmp, path)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(codebook_size={self.codebook_size}, "
            f"fingerprint={self.fingerprint()})"
        )


def load(path: str | os.PathLike) -> ImageTokenizer:
    """Read a tokenizer written by :meth:`ImageTokenizer.save`; ValueError names a bad file."""
    path = os.fspath(path)
    try:
        with np.load(path) as z:
            meta = json.loads(z["__meta__"].tobytes().decode())
            arrays = {k[2:]: z[k] for k in z.files if k.startswith("a/")}
        if meta.get("format") != FORMAT:
            raise ValueError(f"format is {meta.get('format')!r}, expected {FORMAT!r}")
        cls = {"kmeans": PatchKMeansTokenizer, "vqvae": VQVAETokenizer}[meta["kind"]]
    except (OSError, KeyError, ValueError) as err:
        raise ValueError(f"{path}: not a readable image tokenizer ({err})") from err
    return cls.from_arrays(meta["config"], arrays)


# ------------------------------------------------------------------------------------------
# Patch k-means
# ------------------------------------------------------------------------------------------


class PatchKMeansTokenizer(ImageTokenizer):
    """Nearest-centroid quantiser of 8×8×3 patches; ``codebook``: float32 ``[K, 192]`` in [0, 1]."""

    kind = "kmeans"

    def __init__(self, codebook: np.ndarray, config: dict | None = None):
        self.codebook = np.asarray(codebook, np.float32)
        if self.codebook.ndim != 2 or self.codebook.shape[1] != REDUCTION * REDUCTION * 3:
            raise ValueError(f"codebook must be [K, 192], got {self.codebook.shape}")
        self.codebook_size = len(self.codebook)
        self.config = dict(config or {}, codebook_size=self.codebook_size)
        self._sq = np.sum(self.codebook**2, axis=1)

    def encode(self, images) -> np.ndarray:
        p = to_patches(check_images(images))
        return nearest(p.reshape(-1, p.shape[-1]), self.codebook, self._sq).reshape(p.shape[:3])

    def decode(self, codes) -> np.ndarray:
        codes = _check_codes(codes, self.codebook_size)
        return from_patches(self.codebook[codes])

    def arrays(self) -> dict[str, np.ndarray]:
        return {"codebook": self.codebook}

    @classmethod
    def from_arrays(cls, config: dict, arrays: dict) -> PatchKMeansTokenizer:
        return cls(arrays["codebook"], config)


def nearest(x: np.ndarray, centers: np.ndarray, center_sq=None, chunk: int = 8192) -> np.ndarray:
    """Index of the nearest center (squared L2) of each row.

    ``x [N, D]``, ``centers [K, D]`` (``center_sq [K]``: their squared norms) → int32 ``[N]``.
    """
    center_sq = np.sum(centers**2, axis=1) if center_sq is None else center_sq
    out = np.empty(len(x), np.int32)
    for i in range(0, len(x), chunk):
        d = center_sq[None, :] - 2.0 * (x[i : i + chunk] @ centers.T)  # [n, K], minus |x|^2
        out[i : i + chunk] = np.argmin(d, axis=1)
    return out


def _check_codes(codes, k: int) -> np.ndarray:
    codes = np.asarray(codes)
    if codes.ndim != 3 or not np.issubdtype(codes.dtype, np.integer):
        raise ValueError(f"codes must be integer [B, h, w], got {codes.dtype} {codes.shape}")
    if codes.size and (codes.min() < 0 or codes.max() >= k):
        raise ValueError(f"codes must lie in [0, {k}), got [{codes.min()}, {codes.max()}]")
    return codes


def kmeans_plus_plus(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding (Arthur & Vassilvitskii 2007): ``x [N, D]`` → ``k`` rows of ``x``."""
    if len(x) <= k:  # fewer points than codes: every point, then jittered repeats
        extra = x[rng.integers(0, len(x), k - len(x))]
        return np.concatenate([x, extra + rng.normal(0, 1e-3, extra.shape).astype(x.dtype)])
    centers = np.empty((k, x.shape[1]), x.dtype)
    centers[0] = x[rng.integers(len(x))]
    d2 = np.sum((x - centers[0]) ** 2, axis=1)
    for i in range(1, k):
        total = d2.sum()
        j = rng.choice(len(x), p=d2 / total) if total > 0 else rng.integers(len(x))
        centers[i] = x[j]
        d2 = np.minimum(d2, np.sum((x - centers[i]) ** 2, axis=1))
    return centers


@dataclasses.dataclass(frozen=True)
class KMeansTrainer:
    """Mini-batch k-means (Sculley 2010) over 8×8×3 patches, seeded by k-means++ on a sample.

    Attributes:
      codebook_size: number of codes K (``layout.image_codes``).
      steps: mini-batch updates; each moves a center by ``1/count`` toward its batch mean.
      batch_size: patches per update.
      init_sample: patches drawn for k-means++ seeding (at least K).
      seed: numpy seed; the same images and seed give the same codebook.
    """

    codebook_size: int
    steps: int = 200
    batch_size: int = 4096
    init_sample: int = 20_000
    seed: int = 0

    def fit(self, images) -> PatchKMeansTokenizer:
        """Learn the codebook from uint8 images ``[B, H, W, 3]``."""
        p = to_patches(check_images(images))
        x = p.reshape(-1, p.shape[-1])
        rng = np.random.default_rng(self.seed)
        k = self.codebook_size
        sample = x[rng.choice(len(x), min(len(x), max(self.init_sample, k)), replace=False)]
        centers = kmeans_plus_plus(sample, k, rng).astype(np.float64)
        counts = np.zeros(k)
        for _ in range(self.steps):
            batch = x[rng.integers(0, len(x), min(self.batch_size, len(x)))].astype(np.float64)
            idx = nearest(batch, centers)
            n = np.bincount(idx, minlength=k).astype(np.float64)
            sums = np.zeros_like(centers)
            np.add.at(sums, idx, batch)
            counts += n
            hit = n > 0  # c += (n / count) * (batch mean - c): Sculley's per-point rate, summed
            centers[hit] += (sums[hit] - n[hit, None] * centers[hit]) / counts[hit, None]
        config = dataclasses.asdict(self)
        config["trained_on_patches"] = int(len(x))
        return PatchKMeansTokenizer(centers.astype(np.float32), config)


# ------------------------------------------------------------------------------------------
# VQ-VAE (Flax)
# ------------------------------------------------------------------------------------------


def _vqvae_module(features: int, latent_dim: int, codebook_size: int):
    """The Flax module: ``x [B, H, W, 3]`` in [0, 1] → ``(recon [B, H, W, 3], aux)``."""
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    class Encoder(nn.Module):
        @nn.compact
        def __call__(self, x):  # [B, H, W, 3] -> [B, H/8, W/8, latent_dim]
            x = x - 0.5
            for width in (features // 2, features, features):  # three stride-2 downsamplings
                x = nn.relu(nn.Conv(width, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)))(x))
            x = x + nn.Conv(features, (3, 3))(nn.relu(nn.Conv(features, (3, 3))(x)))
            return nn.Conv(latent_dim, (1, 1))(x)

    class Decoder(nn.Module):
        @nn.compact
        def __call__(self, z):  # [B, h, w, latent_dim] -> [B, 8h, 8w, 3]
            x = nn.Conv(features, (3, 3))(z)
            x = x + nn.Conv(features, (3, 3))(nn.relu(nn.Conv(features, (3, 3))(nn.relu(x))))
            for width in (features, features // 2):
                x = nn.relu(nn.ConvTranspose(width, (4, 4), strides=(2, 2))(nn.relu(x)))
            return nn.ConvTranspose(3, (4, 4), strides=(2, 2))(x) + 0.5

    class VQVAE(nn.Module):
        def setup(self):
            self.encoder, self.decoder = Encoder(), Decoder()
            self.codebook = self.param(
                "codebook",
                nn.initializers.uniform(1.0 / codebook_size),
                (codebook_size, latent_dim),
            )  # [K, latent_dim]

        def encode(self, x):  # -> z [B, h, w, latent_dim], codes [B, h, w]
            z = self.encoder(x)
            d = (
                jnp.sum(z**2, -1, keepdims=True)
                - 2.0 * z @ self.codebook.T
                + jnp.sum(self.codebook**2, -1)
            )  # [B, h, w, K]
            return z, jnp.argmin(d, axis=-1).astype(jnp.int32)

        def decode(self, codes):
            return self.decoder(self.codebook[codes])

        def __call__(self, x):
            z, codes = self.encode(x)
            zq = self.codebook[codes]
            sg = jax.lax.stop_gradient
            aux = {
                "codebook": jnp.mean((sg(z) - zq) ** 2),
                "commit": jnp.mean((z - sg(zq)) ** 2),
                "codes": codes,
                "z": z,
            }
            return self.decoder(z + sg(zq - z)), aux  # straight-through estimator

    return VQVAE()


def vqvae_loss(params, module, images, beta: float = 0.25):
    """Loss of a batch: pixel MSE + codebook loss + ``beta`` × commitment loss.

    ``images``: float32 ``[B, H, W, 3]`` in [0, 1]. Returns ``(loss, aux)`` with the parts
    (``mse``, ``codebook``, ``commit``), the codes ``[B, h, w]`` and the latents ``z``.
    """
    import jax.numpy as jnp

    recon, aux = module.apply({"params": params}, images)
    aux = dict(aux, mse=jnp.mean((recon - images) ** 2))
    return aux["mse"] + aux["codebook"] + beta * aux["commit"], aux


def make_train_step(module, optimizer, beta: float = 0.25):
    """A jitted ``step(params, opt_state, images) -> (params, opt_state, loss, aux)``.

    ``loss`` is the loss before the update; ``aux`` holds :func:`vqvae_loss`'s parts and the
    gradients' global norm (``grad_norm``).
    """
    import jax
    import optax

    @jax.jit
    def step(params, opt_state, images):
        (loss, aux), grads = jax.value_and_grad(vqvae_loss, has_aux=True)(
            params, module, images, beta
        )
        updates, opt_state = optimizer.update(grads, opt_state, params)
        aux = dict(aux, grad_norm=optax.tree.norm(grads))
        return optax.apply_updates(params, updates), opt_state, loss, aux

    return step


class VQVAETokenizer(ImageTokenizer):
    """A trained VQ-VAE: ``params`` (the Flax parameter tree) and its ``config``."""

    kind = "vqvae"

    def __init__(self, params, config: dict):
        import jax

        self.config = dict(config)
        self.codebook_size = int(config["codebook_size"])
        self.params = jax.tree_util.tree_map(np.asarray, params)
        self.module = _vqvae_module(config["features"], config["latent_dim"], self.codebook_size)
        m = self.module
        self._encode = jax.jit(lambda p, x: m.apply({"params": p}, x, method=m.encode)[1])
        self._decode = jax.jit(lambda p, c: m.apply({"params": p}, c, method=m.decode))

    def encode(self, images, batch_size: int = 256) -> np.ndarray:
        images = check_images(images)
        out = [
            np.asarray(self._encode(self.params, images[i : i + batch_size] / np.float32(255)))
            for i in range(0, len(images), batch_size)
        ]
        return np.concatenate(out).astype(np.int32)

    def decode(self, codes, batch_size: int = 256) -> np.ndarray:
        codes = _check_codes(codes, self.codebook_size)
        out = [
            to_uint8(self._decode(self.params, codes[i : i + batch_size]))
            for i in range(0, len(codes), batch_size)
        ]
        return np.concatenate(out)

    def arrays(self) -> dict[str, np.ndarray]:
        from flax import traverse_util

        return traverse_util.flatten_dict(self.params, sep="/")

    @classmethod
    def from_arrays(cls, config: dict, arrays: dict) -> VQVAETokenizer:
        from flax import traverse_util

        return cls(traverse_util.unflatten_dict(arrays, sep="/"), config)


def init_params(shapes, codebook_size: int, seed: int) -> dict:
    """Seeded numpy initial values for a tree of ``jax.ShapeDtypeStruct`` (from ``eval_shape``).

    Kernels ``[..., fan_in_channels, out]``: LeCun normal (std ``1/sqrt(fan_in)``, flax's
    default); biases: zeros; the codebook: uniform in ``±1/K`` (re-seeded from encoder outputs
    before training). Drawn in numpy because compiling jax's random initialisers takes tens of
    seconds on a small CPU, far longer than the few milliseconds the draws need.
    """
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng((seed, 7))

    def draw(path, leaf):
        name = jax.tree_util.keystr(path)
        if name.endswith("['codebook']"):
            value = rng.uniform(-1.0 / codebook_size, 1.0 / codebook_size, leaf.shape)
        elif name.endswith("['kernel']"):
            value = rng.normal(0.0, 1.0 / math.sqrt(math.prod(leaf.shape[:-1])), leaf.shape)
        else:
            value = np.zeros(leaf.shape)
        return jnp.asarray(value, leaf.dtype)

    return jax.tree_util.tree_map_with_path(draw, shapes)


@dataclasses.dataclass(frozen=True)
class VQVAETrainer:
    """Trains a small VQ-VAE (see the module docstring) with optax Adam.

    Attributes:
      codebook_size: number of codes K (``layout.image_codes``).
      features: conv width; latent_dim: width of the code vectors.
      steps, batch_size, learning_rate: Adam steps on random batches of the training images.
      beta: weight of the commitment loss (0.25, as van den Oord et al.).
      restart_every: every this many steps, codes unused since the last restart are re-seeded
        from random encoder outputs of the current batch (0: never).
      time_limit: stop early after this many seconds of training (None: run every step).
      seed: seeds the initial parameters and the batch order.
    """

    codebook_size: int
    features: int = 32
    latent_dim: int = 32
    steps: int = 1500
    batch_size: int = 64
    learning_rate: float = 2e-3
    beta: float = 0.25
    restart_every: int = 100
    time_limit: float | None = None
    seed: int = 0

    def init(self, image_shape: tuple[int, int]):
        """``(module, params)`` for images of ``image_shape`` (H, W)."""
        import jax
        import jax.numpy as jnp

        module = _vqvae_module(self.features, self.latent_dim, self.codebook_size)
        dummy = jnp.zeros((1, *image_shape, 3), jnp.float32)
        shapes = jax.eval_shape(module.init, jax.random.PRNGKey(0), dummy)["params"]
        return module, init_params(shapes, self.codebook_size, self.seed)

    def fit(self, images) -> VQVAETokenizer:
        """Train on uint8 images ``[B, H, W, 3]``; the returned config records the loss curve."""
        import jax
        import jax.numpy as jnp
        import optax

        images = check_images(images)
        rng = np.random.default_rng(self.seed)
        module, params = self.init(images.shape[1:3])
        batch = lambda: images[rng.integers(0, len(images), self.batch_size)] / np.float32(255)
        encode = jax.jit(lambda p, x: module.apply({"params": p}, x, method=module.encode)[0])
        # Seed the codebook with encoder outputs so that every code starts in use.
        z = np.asarray(encode(params, batch())).reshape(-1, self.latent_dim)
        params = dict(params, codebook=jnp.asarray(z[rng.integers(0, len(z), self.codebook_size)]))
        optimizer = optax.adam(self.learning_rate)
        opt_state = optimizer.init(params)
        step = make_train_step(module, optimizer, self.beta)
        used = np.zeros(self.codebook_size, bool)
        history, start, done = [], time.perf_counter(), 0
        for done in range(1, self.steps + 1):
            x = batch()
            params, opt_state, loss, aux = step(params, opt_state, x)
            used[np.asarray(aux["codes"]).ravel()] = True
            if self.restart_every and done % self.restart_every == 0:
                params = self._restart_dead(params, used, aux["z"], rng)
                used[:] = False
            if done % 50 == 0 or done == 1:
                history.append([done, float(loss), float(aux["mse"])])
            if self.time_limit is not None and time.perf_counter() - start > self.time_limit:
                break
        config = dataclasses.asdict(self)
        config.update(
            steps_run=done,
            history=history,
            train_images=len(images),
            train_seconds=round(time.perf_counter() - start, 1),
        )
        return VQVAETokenizer(params, config)

    def _restart_dead(self, params, used, z, rng):
        import jax.numpy as jnp

        dead = np.flatnonzero(~used)
        if not len(dead):
            return params
        z = np.asarray(z).reshape(-1, self.latent_dim)
        codebook = np.array(params["codebook"])
        codebook[dead] = z[rng.integers(0, len(z), len(dead))]
        return dict(params, codebook=jnp.asarray(codebook))


TRAINERS = {"kmeans": KMeansTrainer, "vqvae": VQVAETrainer}


def trainer(kind: str, codebook_size: int, **options):
    """``KMeansTrainer`` (``"kmeans"``) or ``VQVAETrainer`` (``"vqvae"``) with these options."""
    if kind not in TRAINERS:
        raise ValueError(f"image tokenizer kind must be one of {sorted(TRAINERS)}, got {kind!r}")
    return TRAINERS[kind](codebook_size=codebook_size, **options)

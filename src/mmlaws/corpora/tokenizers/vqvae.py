"""A small VQ-VAE image tokenizer in Flax: its model, its loss and its training loop.

The learned alternative to :mod:`~mmlaws.corpora.tokenizers.vq`'s patch k-means, behind the same
:class:`~mmlaws.corpora.tokenizers.vq.ImageTokenizer` interface (``--tokenizer vqvae``). A conv
encoder with three stride-2 downsamplings gives one ``latent_dim`` vector per 8×8 cell, quantised
to the nearest of ``codebook_size`` learned vectors (straight-through gradients, codebook loss
and commitment loss as in van den Oord et al. 2017; dead codes re-seeded from encoder outputs),
then a conv-transpose decoder. Trained with optax Adam on the pixel MSE::

    tok = VQVAETrainer(codebook_size=layout.image_codes, steps=1500).fit(images)  # uint8
    codes = tok.encode(images)                                   # [B, H/8, W/8] int32

Shapes: ``B`` images, ``H, W`` pixels, ``h, w = H/8, W/8`` cells, ``K`` codes, ``Z`` latent width.
This module imports jax, flax and optax; :mod:`~mmlaws.corpora.tokenizers.vq` imports it only
when a ``"vqvae"`` tokenizer is trained or loaded.
"""

from __future__ import annotations

import dataclasses
import math
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import traverse_util

from mmlaws.corpora.tokenizers.vq import ImageTokenizer, check_codes, check_images, to_uint8


class Encoder(nn.Module):
    """Pixels ``[B, H, W, 3]`` in [0, 1] → latents ``[B, h, w, Z]``."""

    features: int
    latent_dim: int

    @nn.compact
    def __call__(self, x):
        x = x - 0.5
        for width in (self.features // 2, self.features, self.features):  # three stride-2 convs
            x = nn.relu(nn.Conv(width, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)))(x))
        x = x + nn.Conv(self.features, (3, 3))(nn.relu(nn.Conv(self.features, (3, 3))(x)))
        return nn.Conv(self.latent_dim, (1, 1))(x)


class Decoder(nn.Module):
    """Latents ``[B, h, w, Z]`` → pixels ``[B, 8h, 8w, 3]`` (about [0, 1])."""

    features: int

    @nn.compact
    def __call__(self, z):
        f = self.features
        x = nn.Conv(f, (3, 3))(z)
        x = x + nn.Conv(f, (3, 3))(nn.relu(nn.Conv(f, (3, 3))(nn.relu(x))))
        for width in (f, f // 2):
            x = nn.relu(nn.ConvTranspose(width, (4, 4), strides=(2, 2))(nn.relu(x)))
        return nn.ConvTranspose(3, (4, 4), strides=(2, 2))(x) + 0.5


class VQVAE(nn.Module):
    """``x [B, H, W, 3]`` in [0, 1] → ``(recon [B, H, W, 3], aux)``; ``codebook`` is ``[K, Z]``."""

    features: int
    latent_dim: int
    codebook_size: int

    def setup(self):
        self.encoder = Encoder(self.features, self.latent_dim)
        self.decoder = Decoder(self.features)
        self.codebook = self.param(
            "codebook",
            nn.initializers.uniform(1.0 / self.codebook_size),
            (self.codebook_size, self.latent_dim),
        )

    def encode(self, x):
        """``(z [B, h, w, Z], codes [B, h, w] int32)``: latents and their nearest codes."""
        z = self.encoder(x)
        d = (
            jnp.sum(z**2, -1, keepdims=True)
            - 2.0 * jnp.einsum("BhwZ,KZ->BhwK", z, self.codebook)
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


def vqvae_loss(params, module: VQVAE, images, beta: float = 0.25):
    """Loss of a batch: pixel MSE + codebook loss + ``beta`` × commitment loss.

    ``images``: float32 ``[B, H, W, 3]`` in [0, 1]. Returns ``(loss, aux)`` with the parts
    (``mse``, ``codebook``, ``commit``), the codes ``[B, h, w]`` and the latents ``z``.
    """
    recon, aux = module.apply({"params": params}, images)
    aux = dict(aux, mse=jnp.mean((recon - images) ** 2))
    return aux["mse"] + aux["codebook"] + beta * aux["commit"], aux


def make_train_step(module: VQVAE, optimizer, beta: float = 0.25):
    """A jitted ``step(params, opt_state, images) -> (params, opt_state, loss, aux)``.

    ``loss`` is the loss before the update; ``aux`` holds :func:`vqvae_loss`'s parts and the
    gradients' global norm (``grad_norm``).
    """

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
        self.config = dict(config)
        self.codebook_size = int(config["codebook_size"])
        self.params = jax.tree_util.tree_map(np.asarray, params)
        self.module = m = VQVAE(config["features"], config["latent_dim"], self.codebook_size)
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
        codes = check_codes(codes, self.codebook_size)
        out = [
            to_uint8(self._decode(self.params, codes[i : i + batch_size]))
            for i in range(0, len(codes), batch_size)
        ]
        return np.concatenate(out)

    def arrays(self) -> dict[str, np.ndarray]:
        return traverse_util.flatten_dict(self.params, sep="/")

    @classmethod
    def from_arrays(cls, config: dict, arrays: dict) -> VQVAETokenizer:
        return cls(traverse_util.unflatten_dict(arrays, sep="/"), config)


def init_params(shapes, codebook_size: int, seed: int) -> dict:
    """Seeded numpy initial values for a tree of ``jax.ShapeDtypeStruct`` (from ``eval_shape``).

    Kernels ``[..., fan_in_channels, out]``: LeCun normal (std ``1/sqrt(fan_in)``, flax's
    default); biases: zeros; the codebook: uniform in ``±1/K`` (re-seeded from encoder outputs
    before training). Drawn in numpy because compiling jax's random initialisers takes tens of
    seconds on a small CPU, far longer than the few milliseconds the draws need.
    """
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

    def init(self, image_shape: tuple[int, int]) -> tuple[VQVAE, dict]:
        """``(module, params)`` for images of ``image_shape`` (H, W)."""
        module = VQVAE(self.features, self.latent_dim, self.codebook_size)
        dummy = jnp.zeros((1, *image_shape, 3), jnp.float32)
        shapes = jax.eval_shape(module.init, jax.random.PRNGKey(0), dummy)["params"]
        return module, init_params(shapes, self.codebook_size, self.seed)

    def fit(self, images) -> VQVAETokenizer:
        """Train on uint8 images ``[B, H, W, 3]``; the returned config records the loss curve."""
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
            params, opt_state, loss, aux = step(params, opt_state, batch())
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
        """Codes unused since the last restart take random encoder outputs of this batch."""
        dead = np.flatnonzero(~used)
        if not len(dead):
            return params
        z = np.asarray(z).reshape(-1, self.latent_dim)
        codebook = np.array(params["codebook"])
        codebook[dead] = z[rng.integers(0, len(z), len(dead))]
        return dict(params, codebook=jnp.asarray(codebook))

"""Image tokenizers (patch k-means, VQ-VAE), image sources and the Images / Image-Text builders."""

import dataclasses
import itertools

import numpy as np
import pytest

from mmlaws.corpora import build
from mmlaws.corpora import images as builders
from mmlaws.corpora.sources import SourceMissing, available
from mmlaws.corpora.sources import images as si
from mmlaws.corpora.tokenizers import vq, vqvae
from mmlaws.data import shards
from mmlaws.data.vocab import TINY, Modality


def _random_images(b=3, h=16, w=24, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (b, h, w, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def digits16():
    """sklearn digits upsampled to 16×16 RGB: (train [300], held-out [100])."""
    pytest.importorskip("sklearn")
    images = np.stack([item.image for item in itertools.islice(si.digits(16), 400)])
    return images[:300], images[300:]


@pytest.fixture(scope="module")
def tiny_vqvae():
    return vqvae.VQVAETrainer(
        codebook_size=TINY.image_codes, features=8, latent_dim=4, steps=3, batch_size=4
    )


def test_encode_decode_shapes_reduction_and_ids():
    images = _random_images()
    tok = vq.KMeansTrainer(codebook_size=TINY.image_codes, steps=5, batch_size=64).fit(images)
    codes = tok.encode(images)
    assert codes.shape == (3, 16 // 8, 24 // 8) and codes.dtype == np.int32
    assert codes.min() >= 0 and codes.max() < TINY.image_codes
    assert tok.decode(codes).shape == images.shape and tok.decode(codes).dtype == np.uint8
    doc = tok.document(codes[0], TINY)
    assert doc.shape == (2 * 3 + 2,)
    assert doc[0] == TINY.image_begin_id and doc[-1] == TINY.image_end_id
    TINY.check(doc[1:-1], Modality.IMAGE)
    np.testing.assert_array_equal(doc[1:-1] - TINY.image_start, codes[0].ravel())  # row-major
    assert len(tok.documents(images, TINY)) == 3


def test_patches_round_trip_and_bad_shapes():
    images = _random_images(2, 8, 16)
    np.testing.assert_array_equal(vq.from_patches(vq.to_patches(images)), images)
    # A codebook holding the exact patches reconstructs exactly.
    tok = vq.PatchKMeansTokenizer(vq.to_patches(images).reshape(-1, 192))
    np.testing.assert_array_equal(tok.decode(tok.encode(images)), images)
    assert vq.reconstruction_error(tok, images)["mse"] == 0.0
    with pytest.raises(ValueError, match="multiples of 8"):
        tok.encode(_random_images(1, 12, 16))
    with pytest.raises(ValueError, match="uint8"):
        tok.encode(images.astype(np.float32))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        tok.decode(np.full((1, 1, 1), 4))


def test_kmeans_beats_a_random_codebook_on_digits(digits16):
    train, held_out = digits16
    tok = vq.KMeansTrainer(codebook_size=16, steps=30, batch_size=256, seed=0).fit(train)
    rng = np.random.default_rng(0)
    patches = vq.to_patches(train).reshape(-1, 192)
    random_patches = vq.PatchKMeansTokenizer(patches[rng.choice(len(patches), 16, replace=False)])
    uniform = vq.PatchKMeansTokenizer(rng.uniform(0, 1, (16, 192)))
    err = vq.reconstruction_error(tok, held_out)
    assert err["mse"] < 0.8 * vq.reconstruction_error(random_patches, held_out)["mse"]
    assert err["mse"] < 0.2 * vq.reconstruction_error(uniform, held_out)["mse"]
    assert err["psnr"] == pytest.approx(10 * np.log10(1 / err["mse"]))
    # Seeded: the same images and seed give the same codebook.
    again = vq.KMeansTrainer(codebook_size=16, steps=30, batch_size=256, seed=0).fit(train)
    assert again.fingerprint() == tok.fingerprint()


def test_vqvae_step_lowers_loss_and_straight_through_gradients(tiny_vqvae):
    import jax
    import optax

    images = _random_images(4, 16, 16).astype(np.float32) / 255
    module, p0 = tiny_vqvae.init((16, 16))
    optimizer = optax.adam(1e-3)
    step = vqvae.make_train_step(module, optimizer)
    p1, state, loss0, aux = step(p0, optimizer.init(p0), images)
    _, _, loss1, _ = step(p1, state, images)  # the loss at p1
    assert float(loss1) < float(loss0)
    assert np.isfinite(float(aux["grad_norm"])) and float(aux["grad_norm"]) > 0
    assert aux["codes"].shape == (4, 2, 2)
    # The straight-through estimator carries the reconstruction gradient into the encoder:
    # Adam moves every encoder weight whose gradient is not zero.
    moved = jax.tree_util.tree_map(lambda a, b: bool(np.any(a != b)), p0["encoder"], p1["encoder"])
    assert all(jax.tree_util.tree_leaves(moved))


def test_vqvae_encode_decode_and_save_load(tmp_path, tiny_vqvae):
    images = _random_images(5, 16, 8)
    tok = dataclasses.replace(tiny_vqvae, steps=0).fit(images)  # training: the test above
    codes = tok.encode(images)
    assert codes.shape == (5, 2, 1) and 0 <= codes.min() and codes.max() < TINY.image_codes
    assert tok.decode(codes).shape == images.shape
    tok.save(tmp_path / "v.npz")
    back = vq.load(tmp_path / "v.npz")
    assert isinstance(back, vqvae.VQVAETokenizer) and back.fingerprint() == tok.fingerprint()
    np.testing.assert_array_equal(back.encode(images), codes)
    np.testing.assert_array_equal(back.decode(codes), tok.decode(codes))


def test_kmeans_save_load_and_fingerprint(tmp_path):
    images = _random_images()
    tok = vq.KMeansTrainer(codebook_size=8, steps=3, batch_size=32).fit(images)
    tok.save(tmp_path / "k.npz")
    back = vq.load(tmp_path / "k.npz")
    assert back.fingerprint() == tok.fingerprint() and back.codebook_size == 8
    np.testing.assert_array_equal(back.encode(images), tok.encode(images))
    other = vq.PatchKMeansTokenizer(tok.codebook + 1e-3)
    assert other.fingerprint() != tok.fingerprint()
    (tmp_path / "bad.npz").write_bytes(b"not a tokenizer")
    with pytest.raises(ValueError, match="bad.npz"):
        vq.load(tmp_path / "bad.npz")


def test_codebook_larger_than_layout_is_refused():
    tok = vq.PatchKMeansTokenizer(np.zeros((TINY.image_codes + 1, 192)))
    with pytest.raises(ValueError, match="does not fit"):
        tok.document(np.zeros((1, 1), int), TINY)


def test_image_helpers():
    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:2, :, 3] = 255  # top half opaque red-ish, bottom transparent -> white
    rgb = si.to_rgb(rgba)
    assert rgb.shape == (4, 6, 3) and (rgb[0, 0] == [200, 0, 0]).all()
    assert (rgb[3, 0] == 255).all()
    assert si.pad_square(rgb, 8).shape == (8, 8, 3)
    assert si.to_rgb(np.ones((3, 3), bool)).dtype == np.uint8
    crops = list(si.random_crops(rgb, 8, 3, np.random.default_rng(0), min_side=2))
    assert len(crops) == 3 and all(c.shape == (8, 8, 3) for c in crops)


def test_stamp_captions_and_emoji_names(tmp_path):
    from PIL import Image

    Image.new("RGBA", (10, 20), (0, 0, 255, 255)).save(tmp_path / "frog.png")
    (tmp_path / "frog.txt").write_text("A frog.\nfr.utf8=Une grenouille.\n", encoding="utf-8")
    Image.new("RGBA", (10, 10), (0, 255, 0, 255)).save(tmp_path / "frog_mirror.png")
    items = list(si.tuxpaint_stamps(8, root=str(tmp_path)))
    assert [it.caption for it in items] == ["A frog.", None]
    assert items[0].image.shape == (8, 8, 3)
    assert len(list(si.tuxpaint_stamps(8, root=str(tmp_path), captioned_only=True))) == 1
    test = tmp_path / "emoji-test.txt"
    test.write_text(
        "# group: Smileys\n"
        "1F600      ; fully-qualified     # 😀 E1.0 grinning face\n"
        "263A       ; unqualified         # ☺ E0.6 smiling face\n"
        "1F1EB 1F1F7; fully-qualified     # 🇫🇷 E2.0 flag: France\n",
        encoding="utf-8",
    )
    assert si.emoji_names(str(test)) == [("😀", "grinning face"), ("🇫🇷", "flag: France")]


def test_missing_debian_source_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setattr(si, "OPENCLIPART_ROOT", str(tmp_path / "nowhere"))
    monkeypatch.setattr(si, "TUXPAINT_ROOT", str(tmp_path / "nowhere"))
    with pytest.raises(SourceMissing, match="apt-get install -y openclipart-png"):
        available(si.image_sources(16), ["openclipart"])
    with pytest.raises(SourceMissing, match="tuxpaint-stamps-default"):
        builders.build_images(build.BuildOptions(tmp_path, TINY, sources=["tuxpaint"]),
                            builders.ImageOptions(size=16))
    for name in ("font.ttf", "emoji-test.txt"):  # the probe only looks for the files
        (tmp_path / name).touch()
    monkeypatch.setattr(si, "EMOJI_FONT", str(tmp_path / "font.ttf"))
    monkeypatch.setattr(si, "EMOJI_TEST", str(tmp_path / "emoji-test.txt"))
    logged = []  # a missing optional source is skipped, with the same notice
    found = available(si.image_sources(16), ["tuxpaint", "emoji"], log=logged.append)
    assert "tuxpaint-stamps-default" in logged[0] and [s.name for s in found] == ["emoji"]


class ByteStandIn:
    """A stand-in caption encoder: each UTF-8 byte → a text id (byte mod text_size)."""

    fingerprint = "bytes-stand-in"

    def __init__(self, layout):
        self.layout = layout

    def encode(self, text):
        local = np.frombuffer(text.encode(), np.uint8).astype(np.int64) % self.layout.text_size
        return self.layout.text_id(local)


def _image(**more):
    trainer = {"steps": 5, "batch_size": 64, "init_sample": 64}
    return builders.ImageOptions(size=16, fit_images=64, tokenizer_options=trainer, **more)


def test_build_images_from_digits_tiny_budget_and_cache(tmp_path, capsys):
    pytest.importorskip("sklearn")
    options = build.BuildOptions(tmp_path, TINY, token_budget=600, sources=["digits"],
                                 validation_fraction=0.2, progress=False)  # fmt: skip
    stats = builders.build_images(options, _image())
    per_image = builders.tokens_per_image(16)
    assert per_image == 6
    total = sum(s["tokens"] for s in stats["splits"].values())
    assert total == 600 and stats["build"]["sources"]["digits"]["documents"] == 100
    assert stats["splits"]["validation"]["documents"] > 0
    doc = shards.ShardSource(tmp_path, "images", "train")[0]
    assert len(doc) == per_image and doc[0] == TINY.image_begin_id
    assert doc[-1] == TINY.image_end_id
    TINY.check(doc[1:-1], Modality.IMAGE)
    [saved] = (tmp_path / "tokenizers").glob("image-kmeans-16-16px-*.npz")
    assert stats["build"]["key"]["tokenizer"] == vq.load(saved).fingerprint()
    capsys.readouterr()
    again = builders.build_images(options, _image())  # cached: nothing rebuilt
    assert again["build"]["digest"] == stats["build"]["digest"]
    assert "up to date" in capsys.readouterr().out


def test_build_image_text_with_a_stand_in_encoder(tmp_path):
    pytest.importorskip("sklearn")
    encoder = ByteStandIn(TINY)
    options = build.BuildOptions(tmp_path, TINY, token_budget=170, sources=["digits"],
                                 progress=False)  # fmt: skip
    stats = builders.build_image_text(options, _image(), text_encoder=encoder)
    caption = encoder.encode("the digit 0")
    assert stats["build"]["sources"]["digits"]["documents"] == 170 // (len(caption) + 6)
    assert "bytes-stand-in" in stats["build"]["key"]["tokenizer"]
    source = shards.ShardSource(tmp_path, "image_text", "train")
    docs = [source[i] for i in range(len(source))]
    starts = {tuple(d[: len(caption)]) for d in docs}
    assert tuple(caption) in starts  # some document is "the digit 0" + image
    for doc in docs:
        n = len(caption)
        TINY.check(doc[:n], Modality.TEXT)
        assert doc[n] == TINY.image_begin_id and doc[-1] == TINY.image_end_id
    with pytest.raises(SourceMissing, match="bpe.json"):
        builders.build_image_text(options, bpe_path=tmp_path / "bpe.json")


def test_photo_crops_are_seeded_and_counted(tmp_path):
    pytest.importorskip("sklearn")
    options = build.BuildOptions(tmp_path, TINY, sources=["sklearn-photos"], progress=False)
    image = dataclasses.replace(_image(crops_per_photo=[3, 1]), fit_images=6)
    stats = builders.build_images(options, image)
    assert stats["build"]["sources"]["sklearn-photos"]["documents"] == 2 * 3
    assert stats["build"]["key"]["config"]["crops_per_photo"] == [3, 1]
    first = [it.image for it in si.sklearn_photos(16, 3, seed=0)]
    again = [it.image for it in si.sklearn_photos(16, 3, seed=0)]
    other = [it.image for it in si.sklearn_photos(16, 3, seed=1)]
    assert all((a == b).all() for a, b in zip(first, again, strict=True))
    assert any((a != b).any() for a, b in zip(first, other, strict=True))


@pytest.mark.parametrize(
    "bad, match",
    [({"size": 12}, "size=12"), ({"tokenizer": "pca"}, "tokenizer='pca'"), ({"size": 0}, "size=0")],
)
def test_image_options_name_the_bad_field(bad, match):
    from mmlaws.errors import ConfigError

    with pytest.raises(ConfigError, match=match):
        builders.ImageOptions(**bad)

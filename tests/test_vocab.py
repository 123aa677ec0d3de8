"""The vocabulary layout: contiguous disjoint ranges, modality by id, bounds checks."""

import doctest

import jax.numpy as jnp
import numpy as np
import pytest

from mmlaws.data import PAPER, SMALL, SPECIAL_TOKENS, TINY, Modality, VocabLayout, vocab
from mmlaws.errors import ConfigError

PRESETS = {"PAPER": PAPER, "SMALL": SMALL, "TINY": TINY}
ORDER = (Modality.SPECIAL, Modality.TEXT, Modality.IMAGE, Modality.SPEECH, Modality.UNUSED)


def test_paper_preset_matches_section_4_2():
    # §4.2: one vocabulary of 2^16 in all, image codes and speech units inside it.
    assert (PAPER.image_codes, PAPER.speech_units) == (8192, 2000)
    assert PAPER.text_size == 2**16 - 8192 - 2000 - len(SPECIAL_TOKENS) - 16 == 55321
    assert PAPER.used_size == PAPER.size == 2**16


def test_layouts_by_name_in_any_case():
    assert vocab.resolve_layout("paper") is vocab.resolve_layout("PAPER") is PAPER
    assert vocab.resolve_layout("Micro") is vocab.MICRO and vocab.resolve_layout(TINY) is TINY
    assert {vocab.layout_name(layout) for layout in vocab.LAYOUTS.values()} == set(vocab.LAYOUTS)
    assert vocab.layout_name(VocabLayout(text_size=5, image_codes=5, speech_units=5)) is None
    with pytest.raises(ConfigError, match=r"one of \['micro', 'paper', 'small', 'tiny'\].*huge"):
        vocab.resolve_layout("huge")


@pytest.mark.parametrize("name", PRESETS)
def test_ranges_are_contiguous_and_disjoint(name):
    layout = PRESETS[name]
    ranges = [layout.range_of(m) for m in ORDER]
    assert ranges[0][0] == 0
    for (_, hi), (lo, _) in zip(ranges, ranges[1:], strict=False):
        assert hi == lo
    assert ranges[-1][1] == layout.size
    assert ranges[3][1] == layout.used_size
    assert layout.size % layout.pad_to == 0 and 0 <= layout.size - layout.used_size < 128
    sizes = [hi - lo for lo, hi in ranges[1:4]]
    assert sizes == [layout.text_size, layout.image_codes, layout.speech_units]


@pytest.mark.parametrize("name", PRESETS)
def test_modality_of_at_every_boundary(name):
    layout = PRESETS[name]
    ids, expected = [], []
    for modality in ORDER:
        lo, hi = layout.range_of(modality)
        if hi > lo:
            ids += [lo, hi - 1]
            expected += [int(modality)] * 2
    ids += [-1, layout.size, layout.size + 1000]
    expected += [-1, -1, -1]
    got = layout.modality_of(np.array(ids))
    assert got.dtype == np.int8
    assert got.tolist() == expected


def test_modality_of_every_tiny_id_and_on_jax_arrays():
    ids = np.arange(-3, TINY.size + 3)
    got = TINY.modality_of(ids)
    expected = np.full(ids.shape, -1)
    expected[(ids >= 0) & (ids < 23)] = Modality.SPECIAL
    expected[(ids >= 23) & (ids < 55)] = Modality.TEXT
    expected[(ids >= 55) & (ids < 71)] = Modality.IMAGE
    expected[(ids >= 71) & (ids < 79)] = Modality.SPEECH
    np.testing.assert_array_equal(got, expected)
    on_jax = TINY.modality_of(jnp.asarray(ids.reshape(2, -1)))
    assert isinstance(on_jax, type(jnp.zeros(1)))
    np.testing.assert_array_equal(np.asarray(on_jax).ravel(), expected)
    assert TINY.modality_of(60) == Modality.IMAGE


def test_modality_offsets_round_trip():
    for local, offset, modality in (
        (np.arange(TINY.text_size), TINY.text_id, Modality.TEXT),
        (np.arange(TINY.image_codes), TINY.image_id, Modality.IMAGE),
        (np.arange(TINY.speech_units), TINY.speech_id, Modality.SPEECH),
    ):
        ids = offset(local)
        assert np.all(TINY.modality_of(ids) == modality)
        np.testing.assert_array_equal(ids - TINY.range_of(modality)[0], local)
    assert TINY.text_id(0) == 23 and isinstance(TINY.text_id(0), int)


@pytest.mark.parametrize(
    ("method", "bad", "range_name"),
    [
        ("text_id", -1, "text BPE range"),
        ("text_id", 32, "text BPE range"),
        ("image_id", 16, "image code range"),
        ("speech_id", 8, "speech unit range"),
        ("speech_id", [0, 3, 9], "speech unit range"),
        ("sentinel", 16, "sentinel range"),
    ],
)
def test_out_of_range_local_ids_raise(method, bad, range_name):
    with pytest.raises(ValueError, match=range_name):
        getattr(TINY, method)(bad)


def test_non_integer_ids_raise():
    with pytest.raises(ValueError, match="integers"):
        TINY.text_id(np.array([1.0]))


def test_check_rejects_a_token_outside_its_modality():
    TINY.check(TINY.image_id([0, 15]), Modality.IMAGE)
    TINY.check(np.arange(TINY.used_size))
    with pytest.raises(ValueError, match=r"image range \[55, 71\)"):
        TINY.check([55, 71], Modality.IMAGE)
    with pytest.raises(ValueError, match="vocabulary range"):
        TINY.check([0, TINY.used_size])


def test_specials_and_sentinels():
    ids = [TINY.pad_id, TINY.eod_id, TINY.image_begin_id, TINY.image_end_id,
           TINY.speech_begin_id, TINY.speech_end_id, TINY.end_of_span_id]
    assert ids == list(range(len(SPECIAL_TOKENS)))
    assert TINY.sentinel_ids == tuple(TINY.sentinel(i) for i in range(16))
    assert TINY.sentinel_ids == tuple(range(7, 23))
    mask = TINY.is_sentinel(np.arange(TINY.size))
    assert np.flatnonzero(mask).tolist() == list(TINY.sentinel_ids)
    assert [TINY.token_name(i) for i in (1, 6, 7, 22, 23, 55, 78, 79)] == [
        "</s>", "<eoss>", "<mask:0>", "<mask:15>", "text:0", "image:0", "speech:7", "unused:79"]


def test_invalid_layouts_raise():
    with pytest.raises(ValueError, match="num_sentinels"):
        VocabLayout(10, 10, 10, num_sentinels=8)
    with pytest.raises(ValueError, match="image_codes"):
        VocabLayout(10, 0, 10)
    assert VocabLayout(10, 10, 10, pad_to=1).size == 7 + 16 + 30


def test_docstring_examples():
    assert doctest.testmod(vocab).failed == 0

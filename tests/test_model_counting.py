"""Parameter and FLOP counts: against the model's own parameters and against Table 2's names."""

import jax
import pytest

from mmlaws import model as M
from mmlaws.data.vocab import PAPER
from mmlaws.train.settings import RunSettings, plan_run

# Table 2 names vs total counts at the paper's vocabulary (2**16, §4.2). 8M is +18% there:
# its 8.4M-entry embedding dominates (see mmlaws.model.presets); every other row is within 10%.
TOLERANCE = {"8M": 0.20}
OPT_VOCAB = 50272  # GPT-2 BPE padded, as the OPT releases use


def _leaves(config):
    return sum(x.size for x in jax.tree.leaves(M.abstract_params(config)))


@pytest.mark.parametrize("name", list(M.PRESETS))
def test_total_count_equals_the_models_parameters(name):
    assert _leaves(M.PRESETS[name]) == M.total_params(M.PRESETS[name])


def test_count_with_untied_output_and_custom_width():
    config = M.PRESETS["tiny"].replace(tie_embeddings=False, d_ff=100, num_heads=3, d_head=8)
    assert _leaves(config) == M.total_params(config)
    assert M.total_params(config) - M.non_embedding_params(config) == (
        2 * config.vocab_size * config.d_model + config.max_len * config.d_model)


@pytest.mark.parametrize("row", M.TABLE_2, ids=lambda r: r.name)
def test_paper_presets_match_their_names(row):
    total = M.total_params(M.PRESETS[row.name])
    assert M.PRESETS[row.name].vocab_size == M.PAPER_VOCAB_SIZE == 65536
    assert abs(total / row.nominal_params - 1) <= TOLERANCE.get(row.name, 0.15), total
    at_opt_vocab = M.total_params(M.paper_config(row, vocab_size=OPT_VOCAB))
    assert abs(at_opt_vocab / row.nominal_params - 1) <= 0.07, at_opt_vocab


def test_the_paper_layout_is_the_presets_vocabulary():
    # One vocabulary: the data's PAPER layout is 2**16 ids in all, and training on it (the
    # layout's size replaces the preset's) leaves every Table 2 row, and its count, as it is.
    assert PAPER.size == PAPER.used_size == M.PAPER_VOCAB_SIZE == 2**16
    for row in M.TABLE_2:
        plan = plan_run(RunSettings(total_steps=1, model=row.name, vocab="paper"), ["text"])
        assert plan.config == M.PRESETS[row.name]
        assert M.total_params(plan.config) == M.total_params(M.paper_config(row))


def test_known_counts_by_hand():
    # 125M at 2**16: 12 blocks of 12·768² + 13·768, final LN, tokens 65536·768, positions 2048·768
    config = M.PRESETS["125M"]
    non_embedding = 12 * (12 * 768**2 + 13 * 768) + 2 * 768
    assert M.non_embedding_params(config) == non_embedding == 85_056_000
    assert M.total_params(config) == non_embedding + 65536 * 768 + 2048 * 768


def test_training_flops_per_token():
    config = M.PRESETS["125M"]
    n_matmul = M.non_embedding_params(config) + 65536 * 768
    assert M.training_flops_per_token(config) == 6 * n_matmul + 12 * 12 * 768 * 2048
    assert M.training_flops_per_token(config, context=1024) < M.training_flops_per_token(config)


def test_mfu_and_peak_table():
    assert M.peak_flops("NVIDIA H100 80GB HBM3") == 989e12
    assert M.peak_flops("TPU v5 lite") == 197e12 and M.peak_flops("TPU v5p") == 459e12
    assert M.peak_flops("cpu") is None and M.mfu(1e9, 1e3, 1, "cpu") is None
    assert M.mfu(1e9, 494.5e3, 2, "NVIDIA A100-SXM4-80GB") == pytest.approx(1e9 * 494.5e3 / 624e12)


def test_replacing_d_model_rederives_the_default_d_ff():
    from mmlaws.model import PRESETS

    tiny = PRESETS["tiny"]
    assert tiny.d_ff == 4 * tiny.d_model
    assert tiny.replace(d_model=128).d_ff == 512
    assert tiny.replace(d_model=128, d_ff=300).d_ff == 300
    custom = tiny.replace(d_ff=100)
    assert custom.replace(d_model=32).d_ff == 100  # a chosen d_ff stays

"""The study's design-power check: a Design's uni-modal runs, a planted Table 1 law, refits."""

import pytest

from mmlaws.errors import ConfigError
from mmlaws.laws import TABLE1
from mmlaws.study import Design, PowerSettings, check_design
from mmlaws.study.power_check import design_runs, design_sizes, power_lines, table1_law

WIDTHS = (16, 32, 64, 128, 256)
MODELS = {f"w{w}": {"d_model": w, "num_layers": 2, "num_heads": max(1, w // 32),
                    "d_head": min(w, 32)} for w in WIDTHS}
SETTINGS = PowerSettings(replicates=24, noise=0.01)


def test_design_runs_count_total_parameters_per_seed():
    d = Design(datasets=["code"], models=MODELS, budgets=[1e5, 1e6], seeds={"w16": 2})
    sizes = design_sizes(d, "micro")
    N, D = design_runs(d, "micro")
    assert len(N) == 2 * len(MODELS) + 2  # w16's runs twice
    assert sorted(set(N)) == sorted(sizes.values())
    # at width 16 the byte embeddings and positions outweigh the two blocks: total, not
    # non-embedding
    from mmlaws.model import non_embedding_params
    from mmlaws.study.design import model_config
    assert sizes["w16"] > 2 * non_embedding_params(model_config(d, "w16", "micro"))


def test_a_spread_design_identifies_the_exponents_and_two_budgets_do_not_pin_beta():
    spread = Design(datasets=["code", "text"], models=MODELS,
                    budgets=[2e5, 6e5, 2e6, 6e6])
    powers = check_design(spread, layout="micro", settings=SETTINGS)
    assert set(powers) == {"code", "text"}
    for name, p in powers.items():
        assert p.params["alpha"].identified and p.params["beta"].identified, p.lines()
        assert p.params["alpha"].truth == table1_law(name).alpha
    narrow = Design(datasets=["code"], models=MODELS, budgets=[3e5, 1.2e6])
    p = check_design(narrow, layout="micro", settings=SETTINGS)["code"]
    assert "beta" in p.unidentified, p.lines()
    assert any(line.strip().startswith("beta: NOT identified") for line in power_lines({"c": p}))


def test_a_given_law_is_planted_and_missing_table1_rows_fall_back_to_code():
    assert table1_law("images") is TABLE1["image"]
    assert table1_law("unknown") is TABLE1["code"]
    law = TABLE1["text"]
    two = Design(datasets=["code"], models=MODELS, budgets=[1e5, 1e6])
    p = check_design(two, {"code": law}, layout="micro", settings=SETTINGS)["code"]
    assert p.params["beta"].truth == law.beta and p.params["B"].truth == law.B  # not rescaled
    one = Design(datasets=["code"], models=MODELS, budgets=[1e5], seeds={"w16": 2})
    out = check_design(one, law, layout="micro", settings=SETTINGS)
    assert "one token count" in out["code"]  # a line saying why, not a crash


@pytest.mark.parametrize("kw", [{"replicates": 1}, {"noise": 0.0}, {"coverage": 40}])
def test_power_settings_are_checked(kw):
    with pytest.raises(ConfigError, match="PowerSettings"):
        PowerSettings(**kw)

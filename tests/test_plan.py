"""The run planner: units of the published laws, the allocation against closed forms, barriers,
architectures, bills, data, intervals, bad input, and the command line."""

import json
import math

import numpy as np
import pytest

import mmlaws.laws as laws
import mmlaws.plan as plan
from mmlaws import main as entry
from mmlaws.errors import ConfigError
from mmlaws.model import counting, presets

UNI = {"a": {"E": 1.6, "A": 400.0, "B": 900.0, "alpha": 0.32, "beta": 0.36},
       "b": {"E": 1.2, "A": 250.0, "B": 600.0, "alpha": 0.28, "beta": 0.33}}
PAIR = {"C": 0.3, "A": 10.0, "B": 5000.0, "alpha": 0.3, "beta": 0.35}


def _law_file(tmp_path, entries=None, quantity="nats"):
    path = tmp_path / "laws.json"
    path.write_text(json.dumps({"quantity": quantity,
                                "laws": entries or {**UNI, "a|b": PAIR}}))
    return str(path)


# --- units -----------------------------------------------------------------------------------
def test_published_laws_are_read_as_perplexity():
    # Read as nats per token with raw N and D, Table 1 would put text above ln 2^16, the loss of
    # a uniform guess over the paper's whole vocabulary: it is a perplexity.
    assert laws.PUBLISHED_QUANTITY == "perplexity"
    assert all(v.quantity == "perplexity" for v in (*laws.TABLE1.values(),
                                                    *laws.TABLE3.values()))
    text = float(laws.TABLE1["text"].predict(1.3e9, 100e9))
    assert text == pytest.approx(21.245, abs=1e-3) and text > math.log(2**16)
    assert 0 < laws.to_nats(text, "perplexity") < math.log(2**16)
    # What stays inconsistent: code's floor E < 1, impossible for a perplexity.
    assert laws.TABLE1["code"].E < 1
    assert float(laws.TABLE1["code"].predict(1e12, 1e13)) < 1
    p = plan.plan({"text": 1.0}, plan.Budget(flops=1e21))
    assert p["laws"]["quantity"] == "perplexity" and "perplexity" in p["laws"]["units"]
    e = p["loss"]["per_modality"]["text"]
    assert e["nats"] == pytest.approx(math.log(e["value"]), rel=1e-12)
    fitted = laws.UnimodalLaw(E=1.0, A=1.0, B=1.0, alpha=0.3, beta=0.3)
    assert fitted.quantity == "nats"


def test_a_perplexity_below_one_is_flagged():
    p = plan.plan({"code": 1.0}, plan.Budget(flops=1e28))
    assert any("perplexity" in w and "< 1" in w for w in p["warnings"])


# --- allocation ------------------------------------------------------------------------------
@pytest.mark.parametrize("modality", sorted(laws.TABLE1))
def test_single_modality_plan_is_chinchilla_optimal(modality):
    settings = plan.PlanSettings(flops="6N")
    for c in (1e19, 1e21, 1e23):
        p = plan.plan({modality: 1.0}, plan.Budget(flops=c), settings=settings)
        ref = laws.chinchilla_optimal(laws.TABLE1[modality], c)
        assert p["optimum"]["N"] == pytest.approx(float(ref.N), rel=1e-9)
        assert p["optimum"]["D"] == pytest.approx(float(ref.D), rel=1e-9)
        assert p["loss"]["overall"]["value"] == pytest.approx(float(ref.loss), rel=1e-9)


def test_fifty_fifty_pair_crossing_is_eq6(tmp_path):
    law_set = plan.load_laws(_law_file(tmp_path))
    term = laws.Interaction(**PAIR)
    closed = laws.compute_optimal(term)
    p = plan.plan({"a": 0.5, "b": 0.5}, plan.Budget(flops=1e20), law_set,
                  plan.PlanSettings(flops="6N"))
    pair = p["pairs"]["a|b"]
    assert pair["interaction"] == "Eq. 4 (fitted at 50/50)"
    for got in (pair["crossing"], pair["eq6"]):
        assert got["N"] == pytest.approx(closed.N, rel=1e-9)
        assert got["D_pair"] == pytest.approx(closed.D, rel=1e-9)
    assert pair["crossing"]["compute"] == pytest.approx(closed.compute, rel=1e-9)
    assert pair["eq6"]["compute_6ND"] == pytest.approx(closed.compute, rel=1e-9)
    N, D = p["optimum"]["N"], p["optimum"]["D"]
    assert pair["synergistic"] == bool(term.C > term.cost(N, D))
    assert pair["gap"] == pytest.approx(float(term.value(N, D)), rel=1e-12)
    # The 50/50 mixture loss is Eq. 4 exactly.
    a, b = (laws.UnimodalLaw(**UNI[k]) for k in "ab")
    eq4 = laws.BimodalLaw(a, b, term).predict(N, D / 2, D / 2)
    assert p["loss"]["overall"]["value"] == pytest.approx(float(eq4), rel=1e-12)


def test_real_flop_count_spends_the_budget_on_the_architectures_count(tmp_path):
    p = plan.plan({"a": 0.5, "b": 0.5}, plan.Budget(flops=1e21), _law_file(tmp_path))
    flops = plan.core.flop_model("architecture")
    N, D = p["optimum"]["N"], p["optimum"]["D"]
    assert float(flops(N)) * D == pytest.approx(1e21, rel=1e-12)
    rows = {a["name"]: a for a in plan.architectures()}
    for row in presets.ARCHITECTURES:
        cfg = presets.paper_config(row)
        got = rows[row.name]
        assert got["total_params"] == counting.total_params(cfg)
        assert float(flops(got["total_params"])) == pytest.approx(
            counting.training_flops_per_token(cfg), rel=1e-12)
    arch = p["architecture"]
    best = min(rows.values(), key=lambda a: abs(math.log(a["total_params"] / N)))
    assert arch["name"] == best["name"]
    assert arch["tokens"] * arch["flops_per_token"] == pytest.approx(1e21, rel=1e-12)
    # No model size on the budget's real-count iso-FLOP line reaches a lower loss.
    law_set = plan.load_laws(_law_file(tmp_path))
    n_scan = N * np.geomspace(0.2, 5, 2001)
    scan = law_set.law.predict(n_scan, 1e21 / flops(n_scan), {"a": 0.5, "b": 0.5})
    assert p["loss"]["overall"]["value"] <= scan.min() + 1e-12
    assert abs(math.log(n_scan[np.argmin(scan)] / N)) < 2e-3


def test_hours_budget_time_and_bill():
    b = plan.Budget(hours=1000.0, accelerator="h100", mfu=0.5, devices=8)
    assert b.compute == pytest.approx(1000 * 3600 * 989e12 * 0.5)
    p = plan.plan({"speech": 0.4, "text": 0.6}, b)
    assert p["time"]["accelerator_hours"] == pytest.approx(1000.0, rel=1e-12)
    assert p["time"]["wall_clock_hours"] == pytest.approx(125.0, rel=1e-12)
    assert p["optimum"]["tokens"]["speech"] == pytest.approx(0.4 * p["optimum"]["D"])


# --- laws with intervals, from a study --------------------------------------------------------
def _study_json(tmp_path, mixture=False):
    rng = np.random.default_rng(0)
    entries = {}
    for k, e in UNI.items():
        samples = {q: (v * np.exp(rng.normal(0, 0.02, 40))).tolist() for q, v in e.items()}
        entries[k] = {**e, "quantity": "nats", "samples": samples,
                      "warnings": [f"β: flat profile in {k} (test)"]}
    entries["a|b"] = {**PAIR, "quantity": "nats"}
    if mixture:
        m = laws.MixtureLaw.from_bimodal([laws.BimodalLaw(
            laws.UnimodalLaw(**UNI["a"]), laws.UnimodalLaw(**UNI["b"]),
            laws.Interaction(C=0.5, A=1.0, B=100.0, alpha=0.3, beta=0.3), names=("a", "b"))])
        entries["mixture:a|b"] = {"law": m.as_dict()}
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "study.json").write_text(json.dumps({"runs": [], "laws": entries}))
    return str(folder)


def test_study_laws_carry_intervals_and_their_warnings(tmp_path):
    p = plan.plan({"a": 0.5, "b": 0.5}, plan.Budget(flops=1e20), _study_json(tmp_path))
    for e in (*p["loss"]["per_modality"].values(), p["loss"]["overall"]):
        lo, hi = e["interval"]
        assert lo <= e["value"] <= hi and lo < hi
    lo, hi = p["optimum"]["interval"]["N"]
    assert lo <= p["optimum"]["N"] <= hi
    assert any("law a: β: flat profile" in w for w in p["warnings"])
    text = plan.markdown(p)
    assert "95% interval" in text and "| a loss (nats) |" in text


def test_a_mixture_law_entry_takes_precedence_for_its_pair(tmp_path):
    law_set = plan.load_laws(_study_json(tmp_path, mixture=True))
    assert law_set.pair_origin[("a", "b")] == "mixture law (mixture:a|b)"
    assert law_set.law.pairs[("a", "b")].on_first.C == 0.5


# --- data ------------------------------------------------------------------------------------
def test_epochs_against_the_built_datasets_and_the_data_constrained_correction(tmp_path):
    from mmlaws.data.shards import read_stats, write_synthetic

    data = tmp_path / "data"
    for name in ("a", "b"):
        write_synthetic(data, name, documents={"train": 50, "validation": 5})
    have = read_stats(data, "a")["splits"]["train"]["tokens"]
    settings = plan.PlanSettings(data_dir=str(data), data_constrained=True, flops="6N")
    p = plan.plan({"a": 0.5, "b": 0.5}, plan.Budget(flops=1e16), _law_file(tmp_path), settings)
    d = p["data"]["a"]
    assert d["tokens_available"] == have
    assert d["epochs"] == pytest.approx(0.5 * p["optimum"]["D"] / have, rel=1e-12)
    assert d["epochs"] > 4 and any("epochs" in w and "Muennighoff" in w for w in p["warnings"])
    c = p["data_constrained"]["per_modality"]["a"]
    assert c["effective_tokens"] == pytest.approx(plan.effective_tokens(d["tokens_needed"], have))
    assert c["value"] > p["loss"]["per_modality"]["a"]["value"]  # repeats are worth less


def test_effective_tokens_follow_muennighoff():
    assert plan.effective_tokens(50.0, 100.0) == 50.0
    r_star = laws.published.MUENNIGHOFF_R_STAR["D"]
    assert plan.effective_tokens(200.0, 100.0) == pytest.approx(
        100 + 100 * r_star * (1 - math.exp(-1 / r_star)))
    assert plan.effective_tokens(1e9, 100.0) == pytest.approx(100 * (1 + r_star), rel=1e-9)


# --- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize("mix, budget, laws_name, match", [
    ({"code": 0.5, "text": 0.6}, {"flops": 1e21}, "table1", "shares sum to 1.1"),
    ({"foo": 0.5, "text": 0.5}, {"flops": 1e21}, "table1", "unknown modality 'foo'"),
    ({"code": 0.5, "text": 0.5}, {"flops": 1e21}, "table3-cm3", "'code' has no law"),
    ({"text": 1.0}, {"flops": 0.0}, "table1", "flops=0.0: the budget must be"),
    ({"text": 1.0}, {"hours": -3.0}, "table1", "hours=-3.0"),
    ({"text": 1.0}, {"hours": 10.0, "accelerator": "abacus"}, "table1",
     "accelerator='abacus': no known peak"),
    ({"text": 1.0}, {"flops": 1e21}, "nowhere.json", "laws='nowhere.json'"),
])
def test_bad_input_names_the_culprit(mix, budget, laws_name, match):
    with pytest.raises(ConfigError, match=match):
        plan.plan(mix, plan.Budget(**budget), laws_name)


def test_command_line_bad_input_is_one_line_and_exit_2(capsys):
    assert entry.main(["plan", "--compute", "1e21", "--mix", "code=0.5,text=0.4"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "shares sum to 0.9" in err
    assert entry.main(["plan", "--compute", "1e21", "--mix", "code:0.5"]) == 2
    assert "'code:0.5' is not NAME=SHARE" in capsys.readouterr().err


# --- command line ----------------------------------------------------------------------------
def test_command_line_json_latex_and_compare(capsys, tmp_path):
    assert entry.main(["plan", "--compute", "1e21", "--mix", "code=0.5,text=0.5", "--json"]) == 0
    p = json.loads(capsys.readouterr().out)
    assert p["architecture"]["name"] == "1.3B" and p["laws"]["quantity"] == "perplexity"
    assert entry.main(["plan", "--compute", "1e21", "--mix", "code=0.5,text=0.5", "--format",
                       "latex", "--laws", _law_file(tmp_path, {**UNI, "a|b": PAIR,
                                                               "code": UNI["a"],
                                                               "text": UNI["b"]})]) == 0
    tex = capsys.readouterr().out
    assert tex.startswith(r"\begin{tabular}") and r"\end{tabular}" in tex
    out = tmp_path / "cmp.md"
    assert entry.main(["plan", "--compute", "1e21", "--mix", "code=0.5,text=0.5", "--compare",
                       "code=0.3,text=0.7", "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0] == "| | code=0.5,text=0.5 | code=0.3,text=0.7 |"
    assert out.read_text() == text
    assert entry.main(["plan", "--compute", "1e21", "--mix", "text=1", "--compare", "1e22"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "| | flops=1e+21 | flops=1e+22 |"


def test_gin_job(capsys, repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    rc = entry.main(["--gin_file=configs/plan/plan.gin", "--gin_param=MIX={'speech': 0.5, "
                     "'text': 0.5}", "--gin_param=COMPUTE=1e22", "--gin_param=FORMAT='json'"])
    assert rc == 0
    p = json.loads(capsys.readouterr().out)
    assert p["budget"]["flops"] == 1e22 and set(p["mix"]) == {"speech", "text"}


def test_memory_plan_on_a_named_mesh():
    # The tests' 8 simulated devices: the mesh spans them all (the command line simulates as
    # many devices as its --mesh names).
    p = plan.plan({"text": 1.0}, plan.Budget(flops=1e16),
                  settings=plan.PlanSettings(mesh={"fsdp": 8}, batch=8, device_gb=80.0))
    m = p["memory"]
    assert m["preset"] == p["architecture"]["name"] == "8M" and m["mesh"] == {"fsdp": 8}
    assert 0 < m["peak_gb"] < 80 and m["fits"]

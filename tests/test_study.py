"""The study end to end: design, analysis on run records drawn from known laws, the report, and
one real (tiny) study trained on the stdlib code dataset."""

import dataclasses
import json

import numpy as np
import pytest

from mmlaws.errors import ConfigError
from mmlaws.laws import FitSettings, Interaction, RunLogWriter, UnimodalLaw
from mmlaws.laws.forms import BimodalLaw
from mmlaws.laws.records import read_runs
from mmlaws.model import total_params
from mmlaws.study import Design, analyse, design, report_study, write_report

MODELS = {"s": {"d_model": 32, "num_layers": 2, "num_heads": 2, "d_head": 16},
          "m": {"d_model": 64, "num_layers": 2, "num_heads": 4, "d_head": 16, "peak_lr": 2e-3},
          "l": {"preset": "mini", "d_model": 96, "num_layers": 3}}


def test_plan_covers_every_set_size_and_budget():
    runs = design.plan(Design(datasets=["text", "code"], models=MODELS, budgets=[2048, 8192]),
                       batch_size=4, sequence_length=64)
    assert len(runs) == 3 * 3 * 2  # {text, code, code+text} x sizes x budgets
    r = runs["code+text_m_D8.19k"]
    assert r["datasets"] == ["code", "text"] and r["steps"] == 32 and r["role"] == "law"
    assert r["bindings"]["SHARES"] == {"code": 0.5, "text": 0.5}
    assert r["bindings"]["PEAK_LR"] == 2e-3 and r["bindings"]["SEQ_LEN"] == 64
    assert "PEAK_LR" not in runs["text_s_D2.05k"]["bindings"]
    assert runs["text_l_D2.05k"]["bindings"]["MODEL"] == "mini"
    assert runs["text_l_D2.05k"]["bindings"]["MODEL_OVERRIDES"] == {"d_model": 96,
                                                                     "num_layers": 3}
    assert runs["text_s_D2.05k"]["steps"] == 8


def test_points_are_values_that_the_sweep_writes_as_gin_once():
    """The study's bindings travel as values; the run's command line holds gin that parses
    back to exactly those values."""
    import gin

    from mmlaws.study import RunSettings
    from mmlaws.sweep import command

    runs = design.plan(Design(datasets=["code"], models=MODELS, budgets=[2048]), batch_size=4,
                       sequence_length=64)
    run = RunSettings(peak_lr=None, extra_bindings={"MESH": {"fsdp": -1}, "WANDB": False})
    pts = design.points(runs, common={"DATA_DIR": "d/x", **run.bindings()},
                        extra=run.extra_bindings)
    point = pts["code_m_D2.05k"]
    assert point["PEAK_LR"] == 2e-3 and point["MESH"] == {"fsdp": -1}  # the model's own rate
    assert pts["code_s_D2.05k"]["PEAK_LR"] is None  # each preset's Table 2 rate
    argv = command("run.gin", point, "out/code_m_D2.05k")
    params = [a.removeprefix("--gin_param=") for a in argv if a.startswith("--gin_param=")]
    gin.clear_config()
    try:
        gin.parse_config(params)
        for name, value in {**point, "OUTPUT_DIR": "out/code_m_D2.05k"}.items():
            assert gin.query_parameter(f"%{name}") == value, name
    finally:
        gin.clear_config()


def test_plan_batch_scan_adds_runs_but_not_the_law_runs_point():
    scan = {"model": "m", "budget": 8192, "batch_sizes": [2, 4, 8]}
    runs = design.plan(Design(datasets=["text", "code"], models=MODELS, budgets=[2048, 8192],
                              batch_scan=scan), batch_size=4, sequence_length=64)
    scan = {k: r for k, r in runs.items() if r["role"] == "batch"}
    assert len(scan) == 3 * 2  # batch 4 at 8192 tokens is a law run already
    assert runs["code_m_D8.19k_b8"]["steps"] == 16


def test_plan_model_defaults_apply_unless_a_model_sets_its_own():
    models = {"a": {"d_model": 8}, "b": {"d_model": 16, "dropout": 0.1, "peak_lr": 1e-3}}
    runs = design.plan(Design(datasets=["code"], models=models, budgets=[1024],
                              model_defaults={"num_layers": 1, "dropout": 0.0}),
                       batch_size=2, sequence_length=8)
    assert runs["code_a_D1.02k"]["bindings"]["MODEL_OVERRIDES"] == {
        "num_layers": 1, "dropout": 0.0, "d_model": 8}
    b = runs["code_b_D1.02k"]["bindings"]
    assert b["MODEL_OVERRIDES"] == {"num_layers": 1, "dropout": 0.1, "d_model": 16}
    assert b["PEAK_LR"] == 1e-3


def test_plan_keeps_each_size_within_its_tokens_per_parameter_band():
    """Budgets outside [low, high] × the model's total parameters (embeddings counted) are not
    trained; the band needs the layout, and a model left with no budget is named."""
    models = {"w4": {"d_model": 4, "num_heads": 1, "d_head": 4, "num_layers": 2},
              "w32": {"d_model": 32, "num_heads": 2, "d_head": 16, "num_layers": 2}}
    spec = Design(datasets=["code"], models=models, budgets=[2e4, 2e5, 2e6, 2e7],
                  tokens_per_parameter=[2, 300])
    n = {m: total_params(design.model_config(spec, m, "micro")) for m in models}
    assert 2e3 < n["w4"] < 5e3 and 3e4 < n["w32"] < 5e4  # embeddings: 2 x 256 x width
    runs = design.plan(spec, batch_size=8, sequence_length=128, layout="micro")
    kept = sorted((r["model"], r["tokens"]) for r in runs.values())
    assert kept == sorted((m, b) for m in models for b in spec.budgets
                          if 2 <= b / n[m] <= 300)
    assert ("w4", 2e6) not in kept and ("w32", 2e4) not in kept
    with pytest.raises(ConfigError, match="needs the vocabulary layout"):
        design.plan(spec, batch_size=8, sequence_length=128)
    narrow = dataclasses.replace(spec, budgets=[2e7])
    with pytest.raises(ConfigError, match="no budget .* suits model 'w4'"):
        design.plan(narrow, batch_size=8, sequence_length=128, layout="micro")


@pytest.mark.parametrize("kw, match", [
    ({"models": {"s": {"width": 3}}}, "unknown keys"),
    ({"model_defaults": {"width": 3}}, "model_defaults: unknown keys"),
    ({"budgets": []}, "budgets"),
    ({"datasets": ["text", "text"]}, "distinct"),
    ({"tokens_per_parameter": [300, 2]}, "tokens_per_parameter"),
    ({"batch_scan": {"model": "zz", "budget": 10, "batch_sizes": [1, 2, 4]}}, "batch_scan"),
])
def test_plan_rejects_bad_designs(kw, match):
    args = dict(datasets=["text"], models=MODELS, budgets=[1000])
    with pytest.raises(ConfigError, match=match):
        design.plan(Design(**{**args, **kw}), batch_size=2, sequence_length=8)
    with pytest.raises(ConfigError, match="batch_size=0"):
        design.plan(Design(**args), batch_size=0, sequence_length=8)


def test_build_data_names_unknown_datasets(tmp_path):
    with pytest.raises(ConfigError, match="no builder"):
        design.build_data(["nosuch"], data_dir=str(tmp_path), layout="small", token_budget=10)


# ------------------------------------------------------------- analysis on known laws
LAW_I = UnimodalLaw(E=1.6, A=40.0, B=900.0, alpha=0.32, beta=0.36)
LAW_J = UnimodalLaw(E=1.2, A=25.0, B=600.0, alpha=0.28, beta=0.33)
TERM = Interaction(C=0.05, A=20.0, B=300.0, alpha=0.25, beta=0.3)
PAIR = BimodalLaw(law_i=LAW_I, law_j=LAW_J, interaction=TERM, names=("a", "b"))
SIZES = {"n1": 1e5, "n2": 4e5, "n3": 1.6e6, "n4": 6.4e6, "n5": 2.56e7}
BUDGETS = [1e6, 2e6, 4e6, 8e6]  # a pair run at 2D is matched by uni-modal runs at D


def _curve_loss(ds, N, t):
    if ds == ("a",):
        return LAW_I.predict(N, t)
    if ds == ("b",):
        return LAW_J.predict(N, t)
    return PAIR.predict(N, t / 2, t / 2)


def _write_runs(folder, rng, spikes_for=()):
    plan = {}
    for ds in (("a",), ("b",), ("a", "b")):
        for name, N in SIZES.items():
            for D in BUDGETS:
                rid = f"{'+'.join(ds)}_{name}_D{design.tokens_label(D)}"
                plan[rid] = {"role": "law", "datasets": list(ds), "model": name, "tokens": D,
                             "batch": 8, "steps": 50}
                shares = {d: 1 / len(ds) for d in ds}
                header = {"run_id": rid, "datasets": shares, "N": N,
                          "N_convention": "non_embedding", "objective": "cm3",
                          "config": {"batch_tokens": 1024}}
                with RunLogWriter(folder / rid, header) as w:
                    ts = np.geomspace(D / 50, D, 50)
                    for k, t in enumerate(ts):
                        loss = float(_curve_loss(ds, N, t) * np.exp(rng.normal(0, 2e-3)))
                        w.write({"kind": "step", "step": k + 1, "tokens": float(t), "loss": loss,
                                 "grad_norm": 1.0,
                                 "loss_per_dataset": {d: loss for d in ds},
                                 "tokens_per_dataset": {d: t * shares[d] for d in ds}})
                    for k in range(int(np.log(N)) if rid in spikes_for else 0):
                        w.write({"kind": "event", "type": "grad_spike", "step": k + 1})
                    final = float(_curve_loss(ds, N, D) * np.exp(rng.normal(0, 2e-3)))
                    w.write({"kind": "final", "step": 50, "tokens": D, "loss": final,
                             "tokens_per_dataset": {d: D * shares[d] for d in ds},
                             "loss_per_dataset": {d: final for d in ds}})
    return plan


@pytest.fixture(scope="module")
def known_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    rng = np.random.default_rng(0)
    spikes = {f"a+b_{n}_D{design.tokens_label(D)}" for n in SIZES for D in BUDGETS}
    plan = _write_runs(root / "runs", rng, spikes_for=spikes)
    (root / "design.json").write_text(json.dumps(plan))
    a = analyse(read_runs(root / "runs"), plan,
                fit=FitSettings(bootstrap_samples=50, holdout_sizes=1, grid="coarse"))
    return root, plan, a


@pytest.mark.slow
def test_analysis_recovers_the_laws_that_made_the_runs(known_study):
    _, _, a = known_study
    laws = a.results["laws"]
    for name, true in (("a", LAW_I), ("b", LAW_J)):
        assert laws[name]["alpha"] == pytest.approx(true.alpha, abs=0.03)
        assert laws[name]["beta"] == pytest.approx(true.beta, abs=0.03)
        lo, hi = laws[name]["interval95"]["alpha"]
        assert lo <= laws[name]["alpha"] <= hi
        assert laws[name]["holdout"]["mean_abs_relative_error"] < 0.01
        assert len(laws[name]["holdout"]["held_out_runs"]) == len(BUDGETS)
    pair = laws["a|b"]
    pred = a.fits.bimodal[("a", "b")].predict(2.56e7, 5e6, 5e6)
    assert pred == pytest.approx(PAIR.predict(2.56e7, 5e6, 5e6), rel=5e-3)
    assert pair["holdout"]["mean_abs_relative_error"] < 0.01
    assert pair["compute_optimal"] is not None
    assert pair["compute_optimal"]["compute"] == pytest.approx(
        6 * pair["compute_optimal"]["N"] * pair["compute_optimal"]["D"])


@pytest.mark.slow
def test_analysis_phenomena_follow_the_runs(known_study):
    _, _, a = known_study
    ratio = [r for r in a.results["ratio"] if "final_ratio" in r]
    assert len(ratio) == len(SIZES) * (len(BUDGETS) - 1)  # none at 1M: no uni-modal run at 0.5M
    for r in ratio:  # the final losses follow the same laws, up to 0.2% noise each
        N, D = r["N"], r["tokens"]
        true = 0.5 * (LAW_I.predict(N, D / 2) + LAW_J.predict(N, D / 2)) / PAIR.predict(
            N, D / 2, D / 2)
        assert r["final_ratio"] == pytest.approx(true, abs=0.01)
        assert r["predicted_final_ratio"] == pytest.approx(true, abs=0.01)
    trend = a.results["laws"]["a|b"]["interaction_trend"]  # Δ = L_pair − ½(L_i + L_j): TERM
    assert trend["num_runs"] == len(ratio) and trend["above"] == len(ratio)  # competition
    assert trend["per_decade_D_ci"][1] < 0 and trend["per_decade_N_ci"][1] < 0  # falls with both
    assert not trend["grows_with_data"]
    c = a.results["spikes"]["correlation"]["a|b"]
    assert c["spearman"] > 0.9  # counts were written as floor(log N)
    assert a.results["spikes"]["counts"]["a_n1_D1M"] == 0
    flat = a.results["flatness"]["runs"]
    assert set(flat) == {str(r) for r in a.all_runs.run_id}
    assert all(0 <= v["a"] <= 100 for k, v in flat.items() if k.startswith("a_"))


@pytest.mark.slow
def test_report_writes_figures_and_tables(known_study, tmp_path):
    _, _, a = known_study
    files = write_report(a, tmp_path, title="known laws")
    names = {f.name for f in files}
    for need in ("README.md", "fig1_loss_curves.png", "fit_a.png", "fit_b.png", "fig3_pair_a_b.png",
                 "fig4_barrier_a_b.png", "fig5_ratio_a_b.png", "fig7_flatness.png",
                 "fig9_spikes.png"):
        assert need in names and (tmp_path / need).stat().st_size > 1000
    text = (tmp_path / "README.md").read_text()
    assert "| a | 20 |" in text and "a \\| b" in text and "at grid edge" in text
    assert f"{a.results['laws']['a']['alpha']:.3g} [" in text  # value with its interval
    assert "held-out" in text and "% on 4 runs" in text
    assert text.splitlines()[2] == "## Result"
    assert "Observed L_pair − ½(L_i + L_j) over 15 matched runs" in text


def test_report_study_needs_a_study_folder(tmp_path):
    with pytest.raises(ConfigError, match="design.json"):
        report_study(study_dir=str(tmp_path))


# ------------------------------------------------------------- a mixture design
def test_plan_trains_each_pair_at_the_mixture_shares_on_the_chosen_models():
    spec = Design(datasets=["text", "code"], models=MODELS, budgets=[2048, 8192],
                  mixture_shares=[0.25, 0.75], mixture_models=["s", "m"], schedule="wsd")
    runs = design.plan(spec, batch_size=4, sequence_length=64)
    mixed = {k: r for k, r in runs.items() if r["role"] == "mixture"}
    assert len(mixed) == 2 * 2 * 2  # shares x models x budgets, as WSD branches
    r = mixed["code.25+text.75_s_D8.19k"]
    assert r["bindings"]["SHARES"] == {"code": 0.25, "text": 0.75}
    assert r["trunk"] == "code.25+text.75_s_trunk" and runs[r["trunk"]]["role"] == "trunk"
    assert runs[r["trunk"]]["bindings"]["SHARES"] == {"code": 0.25, "text": 0.75}
    assert "code.75+text.25_m_D2.05k" in mixed and not any("_l_" in k for k in mixed)
    assert runs["code+text_s_D8.19k"]["bindings"]["SHARES"] == {"code": 0.5, "text": 0.5}
    assert design.share_label(0.125) == "125" and design.share_label(0.7) == "7"


@pytest.mark.parametrize("kw, match", [
    ({"mixture_shares": [0.5]}, "other than 0.5"),
    ({"mixture_shares": [1.2]}, r"in \(0, 1\)"),
    ({"mixture_shares": [0.25], "pairs": False}, "trains no pair"),
    ({"mixture_shares": [0.25], "mixture_models": ["zz"]}, "mixture_models"),
])
def test_plan_rejects_bad_mixture_designs(kw, match):
    with pytest.raises(ConfigError, match=match):
        design.plan(Design(datasets=["text", "code"], models=MODELS, budgets=[1000], **kw),
                    batch_size=2, sequence_length=8)


MIX_SIZES = {"n1": 1e5, "n2": 4e5, "n3": 1.6e6, "n4": 6.4e6}


@pytest.fixture(scope="module")
def mixture_study(tmp_path_factory):
    """A mixture design's records written from a planted per-modality mixture law, with
    measured shares a little off the nominal ones (as padding leaves them)."""
    from mmlaws.laws import MixtureLaw, PairMixing, Transfer
    truth = MixtureLaw(laws={"a": LAW_I, "b": LAW_J}, pairs={("a", "b"): PairMixing(
        ("a", "b"), alpha=0.3, beta=0.4, on_first=Transfer(C=0.15, A=8.0, B=60.0),
        on_second=Transfer(C=0.05, A=4.0, B=150.0))})
    spec = Design(datasets=["a", "b"], models={n: MODELS["s"] for n in MIX_SIZES},
                  budgets=[1e6, 4e6, 1.6e7], mixture_shares=[0.25, 0.75])
    plan = design.plan(spec, batch_size=8, sequence_length=128)
    root, rng = tmp_path_factory.mktemp("mixture"), np.random.default_rng(1)
    for rid, r in plan.items():
        shares = r["bindings"]["SHARES"]
        wa = shares.get("a", 0.0) * (1 + rng.normal(0, 1e-3)) if len(shares) == 2 else \
            shares.get("a", 0.0)
        w = {"a": wa, "b": 1 - wa}
        N, D = MIX_SIZES[r["model"]], r["tokens"]
        per = truth.predict_modalities(np.array([N]), np.array([D]), w)
        losses = {d: float(per[d][0] * np.exp(rng.normal(0, 2e-3))) for d in shares}
        header = {"run_id": rid, "datasets": shares, "N": N, "N_convention": "total",
                  "objective": "cm3", "config": {"batch_tokens": 1024}}
        with RunLogWriter(root / "runs" / rid, header) as log:
            loss = sum(w[d] * v for d, v in losses.items())
            log.write({"kind": "final", "step": 50, "tokens": D, "loss": loss,
                       "tokens_per_dataset": {d: D * w[d] for d in shares},
                       "loss_per_dataset": losses})
    return plan, read_runs(root / "runs")


@pytest.mark.slow
def test_a_mixture_design_is_checked_on_held_out_shares_beside_interpolation(mixture_study):
    from mmlaws.study.analyse import _mixtures, held_shares
    from mmlaws.study.report import mixture_section
    from mmlaws.study.summary import mixture_line
    plan, runs = mixture_study
    assert held_shares([0, 0.25, 0.5, 0.75, 1]) == [0.25, 0.5, 0.75]
    assert held_shares([0, 1]) == [] and held_shares([0.25, 0.5, 0.75]) == [0.5]
    entry = _mixtures(runs, plan)["a|b mixture"]
    assert entry["shares"] == [0, 0.25, 0.5, 0.75, 1]  # measured shares, to two places
    assert [h["held_share"] for h in entry["holdouts"]] == [0.25, 0.5, 0.75]
    for h in entry["holdouts"]:  # every run at the share, measured shares a little off
        assert len(h["runs"]) == len(MIX_SIZES) * 3
    out = entry["held_out"]
    law, interp = out["per_modality"]["law"], out["per_modality"]["interpolation"]
    assert law < 0.01 and law < interp and out["law_wins"] == 3 and out["exponents_interior"]
    assert entry["law"]["form"] == "mixture" and not entry["at_bound"]
    line = mixture_line("a|b", entry)
    assert "beats linear interpolation" in line and "0.25, 0.5, 0.75" in line
    assert "better on 3 of 3" in line and "exponents interior" in line
    table = "\n".join(mixture_section({"a|b mixture": entry}))
    assert table.count("| a \\| b | ") == 3
    assert f"{100 * entry['holdouts'][1]['per_modality']['law']:.2f}%" in table
    bad = mixture_line("a|b", {"error": "too few runs"})
    assert "no held-out check (too few runs)" in bad

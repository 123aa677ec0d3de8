"""The report's opening lines: verdicts on planted entries, and a report from a small study."""

import json

import numpy as np
import pytest

from mmlaws.laws import FitSettings, Interaction, RunLogWriter, UnimodalLaw
from mmlaws.laws.forms import BimodalLaw
from mmlaws.laws.records import read_runs
from mmlaws.study import analyse, design, write_report
from mmlaws.study.summary import _holdout, _seed_line, law_status, pair_verdict, seed_noise

GOOD_POWER = {"params": {k: {"identified": True} for k in ("E", "A", "B", "alpha", "beta")}}
GOOD_LAW = {"alpha": 0.3, "beta": 0.3, "E": 1.5, "on_grid_boundary": [],
            "profile95": {"alpha": [0.25, 0.35, True], "beta": [0.26, 0.34, True],
                          "E": [1.4, 1.6, True]}}


def test_law_identified_only_with_bounded_profiles_no_edge_and_design_power():
    assert law_status(GOOD_LAW, GOOD_POWER) == (True, [])
    unbounded = {**GOOD_LAW, "profile95": {**GOOD_LAW["profile95"], "beta": [0.1, 2.0, False]}}
    ok, why = law_status(unbounded, GOOD_POWER)
    assert not ok and why == ["β's profile interval is unbounded"]
    ok, why = law_status({**GOOD_LAW, "on_grid_boundary": ["e"]}, GOOD_POWER)
    assert not ok and "grid's edge: e" in why[0]
    weak = {"params": {**GOOD_POWER["params"], "beta": {"identified": False}}}
    ok, why = law_status(GOOD_LAW, weak)
    assert not ok and why == ["the design power check does not identify β"]
    assert not law_status(GOOD_LAW, None)[0]
    assert not law_status({**GOOD_LAW, "profile95": {"error": "too few runs"}}, GOOD_POWER)[0]


def test_held_out_reducible_error_is_said_undefined_when_the_refit_E_reaches_the_loss():
    entry = {"holdout_D": {"mean_abs_relative_error": 0.055, "mean_abs_reducible_error": None,
                           "refit_E": 1.92},
             "holdout_N": {"mean_abs_relative_error": 0.048, "mean_abs_reducible_error": 0.178}}
    line = _holdout(entry, "holdout_D", "D")
    assert line.endswith("5.50% of the loss, share of the reducible loss n/a (the refit's E "
                         "(1.92) reaches the held-out losses)")
    assert _holdout(entry, "holdout_N", "N").endswith("4.80% of the loss, 17.8% of the "
                                                      "reducible loss")


@pytest.mark.parametrize("interval, verdict", [
    ([0.01, 0.05, True], "synergy"),  # C > 0: the pair beats ½(L_i + L_j) past the barrier
    ([-0.05, -0.01, True], "competition"),
    ([-0.01, 0.03, True], "unresolved"),  # contains 0
    ([0.01, np.inf, False], "unresolved"),  # unbounded
])
def test_pair_verdict_reads_the_sign_of_C_from_eq4(interval, verdict):
    got, why = pair_verdict({"C": float(np.mean(np.clip(interval[:2], -1, 1))),
                             "profile95": {"C": interval}})
    assert got == verdict, why
    assert pair_verdict({"C": 0.1, "profile95": {"error": "x"}})[0] == "unresolved"


LAW_I = UnimodalLaw(E=1.6, A=40.0, B=900.0, alpha=0.32, beta=0.36)
LAW_J = UnimodalLaw(E=1.2, A=25.0, B=600.0, alpha=0.28, beta=0.33)
PAIR = BimodalLaw(LAW_I, LAW_J, Interaction(C=0.3, A=2.0, B=30.0, alpha=0.25, beta=0.3),
                  names=("a", "b"))
SIZES = {"n1": 1e5, "n2": 4e5, "n3": 1.6e6, "n4": 6.4e6}
BUDGETS = [1e6, 2e6, 4e6, 8e6]  # the pair at 2D is matched by the uni-modal runs at D


def _loss(ds, N, t):
    return {("a",): LAW_I.predict(N, t), ("b",): LAW_J.predict(N, t)}.get(
        ds, PAIR.predict(N, t / 2, t / 2))


def write_small_study(root):
    """Run records of the planted laws: 4 sizes x 4 budgets on a, b and a+b; returns the plan."""
    rng, plan = np.random.default_rng(0), {}
    for ds in (("a",), ("b",), ("a", "b")):
        for name, N in SIZES.items():
            for D in BUDGETS:
                rid = f"{'+'.join(ds)}_{name}_D{design.tokens_label(D)}"
                plan[rid] = {"role": "law", "datasets": list(ds), "model": name, "tokens": D,
                             "batch": 8, "steps": 8}
                shares = {d: 1 / len(ds) for d in ds}
                header = {"run_id": rid, "datasets": shares, "N": N, "N_convention": "total",
                          "flops_per_token": 8 * N, "objective": "cm3",
                          "config": {"batch_tokens": 1024}}
                with RunLogWriter(root / "runs" / rid, header) as w:
                    for k, t in enumerate(np.geomspace(D / 8, D, 8)):
                        w.write({"kind": "step", "step": k + 1, "tokens": float(t),
                                 "loss": float(_loss(ds, N, t)), "grad_norm": 1.0})
                    final = float(_loss(ds, N, D) * np.exp(rng.normal(0, 3e-4)))
                    w.write({"kind": "final", "step": 8, "tokens": D, "loss": final,
                             "tokens_per_dataset": {d: D * shares[d] for d in ds},
                             "loss_per_dataset": {d: final for d in ds}})
    (root / "design.json").write_text(json.dumps(plan))
    return plan


@pytest.fixture(scope="module")
def small_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("small")
    plan = write_small_study(root)
    a = analyse(read_runs(root / "runs"), plan,
                fit=FitSettings(bootstrap_samples=0, holdout_sizes=1, grid="coarse",
                                profile=False))
    laws = a.results["laws"]  # profile intervals planted: forming them takes half a minute
    for name in ("a", "b"):
        laws[name]["profile95"] = {k: [0.9 * laws[name][k], 1.1 * laws[name][k], True]
                                   for k in ("alpha", "beta", "E")}
    laws["a|b"]["profile95"] = {"C": [0.5 * laws["a|b"]["C"], 2 * laws["a|b"]["C"], True]}
    a.results["design_power"] = {"a": {"error": "not checked in this test"}, "b": {
        "law": "Eq. 2 on b", "noise": 0.01, "replicates": 8, "num_runs": 16, "num_converged": 8,
        "params": {k: {"truth": 1.0, "bias": 0.0, "spread": 0.01, "at_edge": 0.0,
                       "coverage": None, "identified": True}
                   for k in ("E", "A", "B", "alpha", "beta")}}}
    return a


def test_report_opens_with_the_result(small_study, tmp_path):
    a = small_study
    write_report(a, tmp_path, title="small")
    text = (tmp_path / "README.md").read_text()
    lines = text.splitlines()
    assert lines[:3] == ["# small", "", "## Result"]
    assert lines[4].startswith("- **Trained**: 48 runs on a, a+b, b; N from 1e+05 to 6.4e+06 "
                               "parameters (total), D from 1e+06 to 8e+06 tokens")
    flops = sum(8 * N * D for N in SIZES.values() for D in BUDGETS) * 3
    assert f"{flops:.3g} training FLOPs in all" in lines[4]
    law_a = next(x for x in lines if x.startswith("- **a**: α = "))
    assert "(95% profile)" in law_a and "NOT identified: design power: not checked" in law_a
    assert "largest N held out: " in law_a and "% of the reducible loss" in law_a
    assert "largest D held out: " in law_a
    pair = next(x for x in lines if x.startswith("- **a | b**: "))
    assert pair.startswith("- **a | b**: SYNERGY — C = ")
    assert "cheapest barrier-breaking point N* = " in pair
    assert "Fig. 5 ratio above 1 (synergy) in " in pair
    assert text.index("## Result") < text.index("## Design power") < text.index("## Uni-modal")
    assert "| b | α | 1 | +0.0% |" in text
    assert "(above 1: synergy, below 1: competition)" in text and "reverse" in text


def test_ratio_rows_use_finished_matched_runs_or_say_why(small_study):
    rows = small_study.results["ratio"]
    got = [r for r in rows if "final_ratio" in r]
    missing = [r for r in rows if "error" in r]
    assert len(got) == len(SIZES) * 3 and len(missing) == len(SIZES)  # no uni-modal run at 0.5M
    assert all("not read mid-schedule" in r["error"] and r["tokens"] == 1e6 for r in missing)
    for r in got:
        N, D = r["N"], r["tokens"]
        assert r["uni_runs"][0].endswith(f"D{design.tokens_label(D / 2)}")
        true = float(PAIR.independent(N, D / 2, D / 2) / PAIR.predict(N, D / 2, D / 2))
        assert r["final_ratio"] == pytest.approx(true, abs=3e-3)
        if abs(true - 1) > 0.005:  # beyond the noise of three final losses
            assert r["verdict"] == ("synergy" if true > 1 else "competition")


def test_seed_noise_groups_the_seeds_of_one_point():
    rows = [{"run_id": "code_w4_D102k", "role": "law", "loss": 3.0},
            {"run_id": "code_w4_D102k_s1", "role": "law", "loss": 3.3},
            {"run_id": "code_w4_D205k", "role": "law", "loss": 2.9},
            {"run_id": "code_w4_D205k_s1", "role": "law", "loss": 2.9},
            {"run_id": "code_w8_D102k", "role": "law", "loss": 2.8},
            {"run_id": "code_w4_trunk", "role": "trunk", "loss": 2.7},
            {"run_id": "code_w4_trunk_s1", "role": "trunk", "loss": 2.6}]
    assert seed_noise(rows) == {"code_w4_D102k": [3.0, 3.3], "code_w4_D205k": [2.9, 2.9]}
    line = _seed_line(rows)
    assert "2 points" in line and "at most 9.5% (code_w4_D102k)" in line and "median" in line
    assert _seed_line(rows[4:5]) is None


def test_a_branch_trunk_tokens_are_counted_once_in_the_total_flops(tmp_path):
    from mmlaws.study.summary import _flops

    def write(rid, config, steps):
        with RunLogWriter(tmp_path, {"run_id": rid, "datasets": {"code": 1.0}, "N": 1e3,
                                     "N_convention": "total", "flops_per_token": 1e4,
                                     "config": config}) as w:
            for step, tokens in steps:
                w.write({"kind": "step", "step": step, "tokens": tokens, "loss": 3.0})
            w.write({"kind": "final", "step": steps[-1][0], "tokens": steps[-1][1], "loss": 3.0,
                     "tokens_per_dataset": {"code": steps[-1][1]},
                     "loss_per_dataset": {"code": 3.0}})

    write("trunk", {}, [(1, 100.0), (2, 200.0), (3, 300.0)])
    write("branch", {"trunk": "trunk", "fork_step": 2}, [(1, 100.0), (2, 200.0), (4, 400.0)])
    total, note = _flops(read_runs(tmp_path))
    assert total == pytest.approx(1e4 * (300 + 200)) and note == ""

import dataclasses

import numpy as np
import pytest
from scipy import stats

from mmlaws import analysis
from mmlaws.laws import RunLogWriter, read_runs
from mmlaws.laws.forms import BimodalLaw, Interaction, UnimodalLaw


def _write(
    folder,
    run_id,
    N,
    tokens,
    loss,
    *,
    datasets=None,
    per_modality=None,
    grad_norm=None,
    spikes=(),
    config=None,
):
    """One run record: step lines at ``tokens`` with ``loss`` and optional per-modality losses."""
    datasets = datasets or {"text": 1.0}
    header = {
        "run_id": run_id,
        "datasets": datasets,
        "N": N,
        "N_convention": "non_embedding",
        "objective": "cm3",
        "config": config or {},
    }
    tokens = np.asarray(tokens, np.float64)
    grad_norm = np.ones(tokens.size) if grad_norm is None else np.asarray(grad_norm)
    with RunLogWriter(folder, header) as w:
        for k, t in enumerate(tokens):
            row = {
                "kind": "step",
                "step": k + 1,
                "tokens": float(t),
                "loss": float(loss[k]),
                "grad_norm": float(grad_norm[k]),
                "lr": 1e-3,
            }
            if per_modality:
                row["loss_per_modality"] = {m: float(v[k]) for m, v in per_modality.items()}
            w.write(row)
        for s in spikes:
            w.write({"kind": "event", "step": int(s), "type": "grad_spike"})
        w.write(
            {
                "kind": "final",
                "step": tokens.size,
                "tokens": float(tokens[-1]),
                "loss": float(loss[-1]),
                "tokens_per_dataset": {d: v * float(tokens[-1]) for d, v in datasets.items()},
                "loss_per_dataset": {d: float(loss[-1]) for d in datasets},
            }
        )


# ----------------------------------------------------------------------------- flatness
T = np.arange(1, 111) * 1e4  # 1e4 .. 1.1e6 tokens; windows of 1e5 after 1e5 warm-up: K = 10
FLAT_KW = dict(warmup_tokens=1e5, window_tokens=1e5)


def _flat_then_decreasing():
    loss = np.where(T <= 6e5, 3.0, 3.0 - (T - 6e5) * 1e-6)
    loss[T < 1e5] = 2.0 + T[T < 1e5] * 1e-5  # rising during warm-up: not counted
    return loss


def test_flatness_percentages_on_synthetic_curves():
    assert analysis.flatness_percentage(T, np.full(T.size, 3.0), **FLAT_KW) == 100.0
    power = 2.0 + 100.0 * T**-0.5
    assert analysis.flatness_percentage(T, power, **FLAT_KW) == 0.0
    flags = analysis.flat_windows(T, _flat_then_decreasing(), **FLAT_KW)
    np.testing.assert_array_equal(flags, [True] * 5 + [False] * 5)
    assert analysis.flatness_percentage(T, _flat_then_decreasing(), **FLAT_KW) == 50.0
    # L = 1/t: window [a, a + W] decreases by W / (a + W); below 0.12 for a + W >= 9e5: 3 of 10
    assert analysis.flatness_percentage(T, 1.0 / T, eps=0.12, **FLAT_KW) == pytest.approx(30.0)


def test_flatness_smoothing_removes_a_one_point_bump():
    power = 2.0 + 100.0 * T**-0.5
    bumped = power.copy()
    bumped[T == 5e5] += 1.0  # the window ending at 5e5 now rises: flat
    assert analysis.flatness_percentage(T, bumped, **FLAT_KW) == 10.0
    assert analysis.flatness_percentage(T, bumped, smooth=3, **FLAT_KW) == 0.0
    np.testing.assert_array_equal(analysis.running_median([3, 1, 2, 9, 4], 3), [3, 2, 2, 4, 4])


def test_flatness_from_run_records(tmp_path):
    speech = _flat_then_decreasing()
    text = 2.0 + 100.0 * T**-0.5
    _write(
        tmp_path,
        "pair",
        1e6,
        T,
        (speech + text) / 2,
        datasets={"text": 0.5, "speech": 0.5},
        per_modality={"text": text, "speech": speech},
    )
    got = analysis.flatness(read_runs(tmp_path), **FLAT_KW)
    assert got == {"pair": {"speech": 50.0, "text": 0.0}}
    assert analysis.flatness(read_runs(tmp_path), modalities=["speech"], **FLAT_KW) == {
        "pair": {"speech": 50.0}
    }
    with pytest.raises(ValueError, match=r"'pair'.*\['image'\]"):
        analysis.flatness(read_runs(tmp_path), modalities=["image"], **FLAT_KW)
    with pytest.raises(ValueError, match="'pair'.*no whole window"):
        analysis.flatness(read_runs(tmp_path), warmup_tokens=1e6, window_tokens=2e5)


def test_flatness_alpha_correlation_equals_scipy(tmp_path):
    # speech flat until t_flat: flatness = (t_flat - 1e5) / 1e6 of the 10 windows
    flat_until = {"text": 6e5, "image": 3e5, "code": 9e5}
    alpha = {("speech", m): a for m, a in {"text": 0.2, "image": 0.35, "code": 0.1}.items()}
    for m, t_flat in flat_until.items():
        speech = np.where(T <= t_flat, 3.0, 3.0 - (T - t_flat) * 1e-6)
        _write(
            tmp_path,
            m,
            1e6,
            T,
            speech,
            datasets={"speech": 0.5, m: 0.5},
            per_modality={"speech": speech},
        )
    alpha = {tuple(sorted(k)): v for k, v in alpha.items()}
    c = analysis.flatness_alpha_correlation(
        read_runs(tmp_path), alpha, modality="speech", **FLAT_KW
    )
    ids = list(read_runs(tmp_path).run_id)
    x = [alpha[tuple(sorted(("speech", i)))] for i in ids]
    y = [(flat_until[i] - 1e5) / 1e6 * 100 for i in ids]
    np.testing.assert_allclose(c.y, y)
    assert c.pearson == pytest.approx(stats.pearsonr(x, y)[0], abs=1e-12)
    assert c.spearman == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)
    with pytest.raises(ValueError, match=r"no alpha.*'code'"):
        analysis.flatness_alpha_correlation(read_runs(tmp_path), {}, modality="speech", **FLAT_KW)


def test_flatness_bad_input():
    with pytest.raises(ValueError, match="too few"):
        analysis.flat_windows([1.0], [1.0], **FLAT_KW)
    with pytest.raises(ValueError, match="odd"):
        analysis.flat_windows(T, T, smooth=2, **FLAT_KW)
    with pytest.raises(ValueError, match="increasing"):
        analysis.flat_windows(T[::-1], T, **FLAT_KW)


# ----------------------------------------------------------------------------- Fig. 5 ratio
LAW = BimodalLaw(
    UnimodalLaw(E=1.0, A=50.0, B=200.0, alpha=0.3, beta=0.3),
    UnimodalLaw(E=1.5, A=30.0, B=300.0, alpha=0.3, beta=0.28),
    Interaction(C=0.5, A=20.0, B=100.0, alpha=0.25, beta=0.25),
    names=("text", "speech"),
)


@pytest.mark.parametrize("w_text", [0.5, 0.25])
def test_competition_ratio_follows_the_law(tmp_path, w_text):
    N = 1e7
    t = np.geomspace(1e6, 1e9, 31)
    w_speech = 1 - w_text
    # uni-modal runs logged exactly at the per-modality tokens the pair run sees
    _write(tmp_path, "text", N, t, LAW.law_i.predict(N, t))
    _write(
        tmp_path,
        "speech",
        N,
        t * w_speech / w_text,
        LAW.law_j.predict(N, t * w_speech / w_text),
        datasets={"speech": 1.0},
    )
    tp = t / w_text
    _write(
        tmp_path,
        "pair",
        N,
        tp,
        LAW.predict(N, w_text * tp, w_speech * tp),
        datasets={"text": w_text, "speech": w_speech},
    )
    recs = {r.run_id: r for r in read_runs(tmp_path).records}
    curve = analysis.competition_ratio(
        recs["text"], recs["speech"], recs["pair"], name_i="text", name_j="speech", law=LAW
    )
    expected = LAW.independent(N, t, t * w_speech / w_text) / LAW.predict(
        N, t, t * w_speech / w_text
    )
    np.testing.assert_allclose(curve.ratio, expected, rtol=1e-12)
    np.testing.assert_allclose(curve.tokens_i, t)
    assert curve.ratio[-1] == pytest.approx(curve.predicted_final, rel=1e-12)
    assert curve.predicted_final == pytest.approx(
        float(
            LAW.independent(N, 1e9, 1e9 * w_speech / w_text)
            / LAW.predict(N, 1e9, 1e9 * w_speech / w_text)
        ),
        rel=1e-12,
    )


def test_competition_ratio_interpolates_in_log_tokens_and_checks_N(tmp_path):
    t = np.array([1e5, 1e7])
    _write(tmp_path, "a", 1e7, t, np.array([4.0, 2.0]))
    _write(tmp_path, "b", 1e7, t, np.array([6.0, 4.0]), datasets={"b": 1.0})
    _write(tmp_path, "ab", 1e7, np.array([2e6, 2e7]), np.array([2.5, 2.0]),
           datasets={"text": 0.5, "b": 0.5})
    _write(tmp_path, "c", 2e7, t, np.array([6.0, 4.0]), datasets={"b": 1.0})
    r = {x.run_id: x for x in read_runs(tmp_path).records}
    curve = analysis.competition_ratio(r["a"], r["b"], r["ab"], name_i="text", name_j="b")
    # D = 1e6, halfway between 1e5 and 1e7 in log tokens: L_a = 3, L_b = 5; then the ends
    np.testing.assert_allclose(curve.ratio, [0.5 * (3 + 5) / 2.5, 0.5 * (2 + 4) / 2.0])
    assert curve.final == pytest.approx(0.5 * (2 + 4) / 2.0)
    assert curve.predicted_final is None
    with pytest.raises(ValueError, match=r"\['a', 'c', 'ab'\] differ in N"):
        analysis.competition_ratio(r["a"], r["c"], r["ab"], name_i="text", name_j="b")
    with pytest.raises(ValueError, match="'ab' is not uni-modal"):
        analysis.competition_ratio(r["a"], r["ab"], r["ab"], name_i="text", name_j="b")
    with pytest.raises(ValueError, match="no dataset 'image'"):
        analysis.competition_ratio(r["a"], r["b"], r["ab"], name_i="image", name_j="b")


def test_competition_ratio_refuses_a_uni_modal_run_read_mid_schedule(tmp_path):
    """A uni-modal run that goes on past the pair run's tokens of its modality would be read
    before its learning rate decayed: refused, naming the run."""
    _write(tmp_path, "a", 1e7, np.array([1e5, 1e7]), np.array([4.0, 2.0]))
    _write(tmp_path, "long", 1e7, np.array([1e5, 1e8]), np.array([6.0, 3.0]),
           datasets={"b": 1.0})
    _write(tmp_path, "ab", 1e7, np.array([2e6, 2e7]), np.array([2.5, 2.0]),
           datasets={"text": 0.5, "b": 0.5})
    r = {x.run_id: x for x in read_runs(tmp_path).records}
    with pytest.raises(ValueError, match="'long' ends at 1e.08 tokens.*sees 1e.07 tokens of 'b'"):
        analysis.competition_ratio(r["a"], r["long"], r["ab"], name_i="text", name_j="b")


def test_ratio_above_one_is_synergy_by_eq5(tmp_path):
    """Eq. 5: synergy is L_pair < ½(L_i + L_j). A planted pair whose interaction term is
    negative (C_ij above the cost) gives a ratio above 1, labelled synergy; a positive term
    gives a ratio below 1, competition (the paper's Figure 5 caption says the reverse)."""
    N, t = 1e7, np.geomspace(1e6, 1e8, 5)
    for name, C in (("syn", 2.0), ("comp", 0.0)):
        law = dataclasses.replace(LAW, interaction=dataclasses.replace(LAW.interaction, C=C))
        folder = tmp_path / name
        _write(folder, "text", N, t, law.law_i.predict(N, t))
        _write(folder, "speech", N, t, law.law_j.predict(N, t), datasets={"speech": 1.0})
        _write(folder, "pair", N, 2 * t, law.predict(N, t, t),
               datasets={"text": 0.5, "speech": 0.5})
        r = {x.run_id: x for x in read_runs(folder).records}
        c = analysis.competition_ratio(r["text"], r["speech"], r["pair"], name_i="text",
                                       name_j="speech", law=law)
        below = law.predict(N, t[-1], t[-1]) < law.independent(N, t[-1], t[-1])
        assert below == (name == "syn")
        assert (c.final > 1) == below and (c.predicted_final > 1) == below
        assert analysis.ratio_verdict(c.final) == ("synergy" if below else "competition")


# ----------------------------------------------------------------------------- spikes
def _norms(n, spike_at):
    g = 1.0 + 0.01 * np.sin(np.arange(n))
    g[list(spike_at)] = 10.0
    return g


SPIKE_RUNS = {  # run id: (N, steps where the norm spikes)
    "r1": (1e6, [20]),
    "r2": (1e7, [20, 40, 60]),
    "r3": (3e6, [30, 50]),
    "r4": (1e8, [15, 25, 35, 45, 55]),
    "r5": (3e7, [5, 12, 33]),  # step 5 comes before 10 norms of history: not a spike
}


def _write_spike_runs(folder):
    tok = np.arange(1, 81) * 1e3
    for rid, (N, at) in SPIKE_RUNS.items():
        spikes = [s + 1 for s in at if s >= 10]
        _write(
            folder,
            rid,
            N,
            tok,
            np.full(80, 3.0),
            datasets={"text": 0.5, "image": 0.5},
            grad_norm=_norms(80, at),
            spikes=spikes,
        )
    return read_runs(folder)


def test_spike_counts_from_events_and_from_grad_norm(tmp_path):
    table = _write_spike_runs(tmp_path)
    want = {"r1": 1, "r2": 3, "r3": 2, "r4": 5, "r5": 2}
    assert analysis.spike_counts(table) == want
    assert analysis.spike_counts(table, source="grad_norm", factor=5.0) == want
    with pytest.raises(ValueError, match="source"):
        analysis.spike_counts(table, source="loss")


def test_running_median_rule_matches_the_training_detector():
    from mmlaws.analysis import spikes
    from mmlaws.laws.spikes import SpikeDetector

    assert spikes.SpikeDetector is SpikeDetector  # one rule, in laws, that training uses
    rng = np.random.default_rng(0)
    g = np.exp(rng.normal(size=300))
    g[rng.choice(300, 20, replace=False)] *= 30
    det = SpikeDetector(factor=4.0, window=25, min_history=7)
    ref = [det.update(float(x)) is not None for x in g]
    got = analysis.running_median_spikes(g, factor=4.0, window=25, min_history=7)
    np.testing.assert_array_equal(got, ref)
    assert got.sum() > 0


def test_spike_correlation_equals_scipy(tmp_path):
    table = _write_spike_runs(tmp_path)
    alpha = 0.27
    ids = list(table.run_id)
    x = np.log([SPIKE_RUNS[i][0] for i in ids]) / alpha
    y = np.array([analysis.spike_counts(table)[i] for i in ids])
    c = analysis.spike_correlation(table, alpha)
    np.testing.assert_allclose(c.x, x)
    np.testing.assert_array_equal(c.y, y)
    assert c.pearson == pytest.approx(stats.pearsonr(x, y)[0], abs=1e-12)
    assert c.pearson_p == pytest.approx(stats.pearsonr(x, y)[1], rel=1e-9)
    assert c.spearman == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)
    assert c.labels == tuple(ids)
    same = analysis.spike_correlation(table, {("image", "text"): alpha})
    assert same.pearson == c.pearson
    with pytest.raises(ValueError, match=r"no alpha.*'r1'"):
        analysis.spike_correlation(table, {("speech", "text"): alpha})
    with pytest.raises(ValueError, match="at least 3"):
        analysis.spike_correlation(table.take([0, 1]), alpha)


# ----------------------------------------------------------------------------- batch size
def _write_batch_runs(folder, batches, b_opt, N=1e7, datasets=None, prefix="b"):
    tok = np.geomspace(1e6, 1e9, 13)
    for b in batches:
        base = 2.0 + 0.1 * (np.log2(b) - np.log2(b_opt)) ** 2
        _write(
            folder,
            f"{prefix}{int(b)}",
            N,
            tok,
            base + 10.0 * tok**-0.3,
            datasets=datasets,
            per_modality={"text": base + 1 + 10.0 * tok**-0.3},
            config={"batch_tokens": b},
        )


def test_optimal_batch_size_log_parabola(tmp_path):
    batches = [0.5e6, 1e6, 2e6, 4e6, 8e6]
    _write_batch_runs(tmp_path, batches, b_opt=1.5e6)
    table = read_runs(tmp_path)
    res = analysis.optimal_batch_size(table, budget_tokens=3e8)  # between logged points
    assert res.interpolated
    assert res.optimum == pytest.approx(1.5e6, rel=1e-9)
    np.testing.assert_array_equal(res.batch_sizes, batches)
    per_mod = analysis.optimal_batch_size(table, budget_tokens=1e9, key="loss_per_modality.text")
    assert per_mod.optimum == pytest.approx(1.5e6, rel=1e-9)
    big = [i for i, r in enumerate(table.run_id) if r in ("b2000000", "b4000000", "b8000000")]
    edge = analysis.optimal_batch_size(table.take(big), budget_tokens=1e9)
    assert (edge.optimum, edge.interpolated) == (2e6, False)


def test_optimal_batch_size_bad_input(tmp_path):
    _write_batch_runs(tmp_path, [1e6, 2e6], b_opt=1e6)
    _write_batch_runs(tmp_path, [4e6], b_opt=1e6, N=2e7, prefix="big")
    table = read_runs(tmp_path)
    with pytest.raises(ValueError, match="differ in N"):
        analysis.optimal_batch_size(table, budget_tokens=1e8)
    ok = table.select(["text"]).take([i for i, r in enumerate(table.run_id) if r != "big4000000"])
    with pytest.raises(ValueError, match="leave the logged range"):
        analysis.optimal_batch_size(ok, budget_tokens=2e9)
    with pytest.raises(ValueError, match="no config.batch_size"):
        analysis.optimal_batch_size(ok, budget_tokens=1e8, batch_key="batch_size")
    with pytest.raises(ValueError, match="at least 2"):
        analysis.optimal_batch_size(ok.take([0]), budget_tokens=1e8)


def test_batch_ratio_and_beta_correlation():
    assert analysis.batch_ratio(2e6, 1e6, 1e6) == pytest.approx(0.0)
    opt = {
        ("image", "text"): 2e6,
        ("speech", "text"): 1e6,
        ("code", "text"): 4e6,
        ("image", "speech"): 3e6,
    }
    beta = {
        ("image", "text"): 0.3,
        ("speech", "text"): 0.2,
        ("code", "text"): 0.45,
        ("image", "speech"): 0.33,
    }
    c = analysis.batch_beta_correlation(opt, beta)
    pairs = sorted(opt)
    x, y = [beta[p] for p in pairs], [opt[p] for p in pairs]
    assert c.pearson == pytest.approx(stats.pearsonr(x, y)[0], abs=1e-12)
    assert c.spearman == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)
    assert c.labels[0] == "code|text"
    with pytest.raises(ValueError, match="no beta"):
        analysis.batch_beta_correlation({**opt, ("a", "b"): 1.0}, beta)
    with pytest.raises(ValueError, match="constant"):
        analysis.correlate([1, 2, 3], [5, 5, 5])


def test_optimal_batch_sizes_groups_by_datasets_and_N(tmp_path):
    batches = [0.5e6, 1e6, 2e6, 4e6]
    _write_batch_runs(tmp_path, batches, b_opt=1.5e6)
    _write_batch_runs(tmp_path, batches, b_opt=2.5e6, N=3e7, prefix="n")
    pair = {"text": 0.5, "image": 0.5}
    _write_batch_runs(tmp_path, batches, b_opt=1e6, datasets=pair, prefix="p")
    got = analysis.optimal_batch_sizes(read_runs(tmp_path), budget_tokens=1e9)
    assert sorted(got) == [(("image", "text"), 1e7), (("text",), 1e7), (("text",), 3e7)]
    assert got[(("text",), 1e7)].optimum == pytest.approx(1.5e6, rel=1e-9)
    assert got[(("text",), 3e7)].optimum == pytest.approx(2.5e6, rel=1e-9)
    assert got[(("image", "text"), 1e7)].optimum == pytest.approx(1e6, rel=1e-9)


def test_predicted_final_ratio_matches_law_names_either_way(tmp_path):
    N, t = 1e7, np.geomspace(1e6, 1e9, 7)
    _write(tmp_path, "text", N, t, LAW.law_i.predict(N, t))
    _write(tmp_path, "speech", N, 3 * t, LAW.law_j.predict(N, 3 * t), datasets={"speech": 1.0})
    _write(
        tmp_path,
        "pair",
        N,
        4 * t,
        LAW.predict(N, t, 3 * t),
        datasets={"text": 0.25, "speech": 0.75},
    )
    r = {x.run_id: x for x in read_runs(tmp_path).records}
    a = analysis.competition_ratio(
        r["text"], r["speech"], r["pair"], name_i="text", name_j="speech", law=LAW
    )
    b = analysis.competition_ratio(
        r["speech"], r["text"], r["pair"], name_i="speech", name_j="text", law=LAW
    )
    assert a.predicted_final == pytest.approx(b.predicted_final, rel=1e-12)
    np.testing.assert_allclose(a.ratio, b.ratio, rtol=1e-12)
    assert b.ratio[-1] == pytest.approx(b.predicted_final, rel=1e-12)


def test_analysis_imports_no_training_code():
    import subprocess
    import sys

    code = (
        "import sys, mmlaws.analysis; "
        "bad = [m for m in sys.modules if m.startswith(('mmlaws.train', 'mmlaws.model', "
        "'tensorflow'))]; print(bad); assert not bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


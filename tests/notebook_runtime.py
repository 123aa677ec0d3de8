"""Running the notebooks as on a fresh Colab runtime: a new virtual environment with a kernel and
a JAX of its own, into which each notebook's first cell installs mmlaws.

``build_runtime`` makes that environment (``python -m venv``; ``pip install ipykernel
jax==COLAB_JAX jaxlib==COLAB_JAX``, a JAX older than the locked one, as a runtime may carry),
registers its kernel, and runs the notebooks' install cell in it with ``MMLAWS_SOURCE`` set to
a clean copy of this checkout, so that what the notebooks import is exactly what that cell
installs (pip's cache is reused; nothing of the project environment leaks in).
``execute_notebook`` runs a notebook with some knobs of its cell tagged "parameters" overridden
(papermill's convention) in that kernel; ``summary_of`` reads the dict its last cell prints
after a ``SUMMARY_JSON`` marker.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

import nbclient
import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

REPO = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
SUMMARY_MARKER = "SUMMARY_JSON"
COLAB_JAX = "0.10.0"  # setup.cfg's floor, below the locked jax
KERNEL = "mmlaws-fresh-runtime"
# The project environment's own settings never reach the fresh runtime's kernel.
DROPPED_ENV = ("PYTHONPATH", "XLA_FLAGS", "VIRTUAL_ENV")
COPY_IGNORED = (".git", ".venv", "build", "dist", "outputs", "*.egg-info", "__pycache__",
                ".pytest_cache", ".ruff_cache", "wandb")


@dataclasses.dataclass(frozen=True)
class Runtime:
    """A fresh runtime: its interpreter, the folder holding its kernelspec, the output of the
    install cell that put mmlaws into it (with how long that took) and the interpreter its
    kernel reported."""

    python: pathlib.Path
    kernels: pathlib.Path
    install_output: str = ""
    install_seconds: float = 0.0
    kernel_python: str = ""


def install_cell(path: pathlib.Path) -> str:
    """The source of a notebook's first code cell (its install cell)."""
    nb = nbformat.read(path, as_version=4)
    return next(c.source for c in nb.cells if c.cell_type == "code")


def kernel_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}
    return {**env, **extra}


def _run(argv, **kw) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, **kw)
    if done.returncode:
        raise RuntimeError(f"{' '.join(map(str, argv))} failed:\n{done.stdout[-3000:]}"
                           f"\n{done.stderr[-3000:]}")
    return done.stdout


def build_runtime(folder: pathlib.Path, notebook: pathlib.Path) -> Runtime:
    """The fresh runtime in ``folder``, with ``notebook``'s install cell run in it."""
    venv = folder / "venv"
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "venv", str(venv)])
    _run([str(python), "-m", "pip", "install", "--quiet", "ipykernel",
          f"jax=={COLAB_JAX}", f"jaxlib=={COLAB_JAX}"], env=kernel_env())
    spec = folder / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "fresh runtime", "language": "python"}))
    # The install cell installs a clean copy of the checkout: setuptools would otherwise build
    # in the checkout's build/, whose stale files can enter the wheel.
    source = folder / "mmlaws_source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*COPY_IGNORED))
    runtime = Runtime(python, folder / "kernels")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(install_cell(notebook)),
                                         nbformat.v4.new_code_cell("print(sys.executable)")])
    nb.cells[1].source = "import sys\n" + nb.cells[1].source
    start = time.perf_counter()
    execute(nb, runtime, cwd=folder, env=kernel_env(MMLAWS_SOURCE=str(source)), timeout=1200)
    seconds = time.perf_counter() - start
    output, reported = ("".join(o.get("text", "") for o in c.outputs) for c in nb.cells)
    return dataclasses.replace(runtime, install_output=output, install_seconds=seconds,
                               kernel_python=reported.strip())


def execute(nb, runtime: Runtime | None, *, cwd, env: dict | None = None, timeout: int = 600):
    """Executes ``nb`` in the runtime's kernel (None: this interpreter's "python3")."""
    km = None
    if runtime is not None:
        km = KernelManager(kernel_name=KERNEL,
                           kernel_spec_manager=KernelSpecManager(kernel_dirs=[
                               str(runtime.kernels)]))
    client = nbclient.NotebookClient(nb, km=km, timeout=timeout, kernel_name=KERNEL
                                     if runtime else "python3",
                                     resources={"metadata": {"path": str(cwd)}})
    client.execute(env=env if env is not None else kernel_env())
    return nb


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
                     cwd: str | pathlib.Path | None = None, timeout: int = 600,
                     runtime: Runtime | None = None):
    """Run the notebook at ``path`` with ``parameters`` overriding its parameters cell.

    The overrides go in a cell injected right after the one tagged "parameters" (tagged
    "injected-parameters", as papermill does); a name that the parameters cell does not assign
    is an error, so a renamed knob fails loudly instead of being ignored. Values must be Python
    literals. The kernel (the runtime's) runs in ``cwd`` (default: the notebook's folder).
    Returns the executed notebook; a cell that raises fails the call with nbclient's
    CellExecutionError.
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
    return execute(nb, runtime, cwd=cwd if cwd is not None else path.parent, timeout=timeout)


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

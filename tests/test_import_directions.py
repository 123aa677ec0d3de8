"""Imports between the top-level packages of mmlaws point down (DESIGN.md, "Allowed imports point
down"). Read statically with ``ast``: an import inside a function counts as much as one at the
top of a file, and so does ``importlib.import_module("mmlaws...")`` with a literal name."""

from __future__ import annotations

import ast
import pathlib
import textwrap

import pytest

SRC = pathlib.Path(__file__).resolve().parents[1] / "src" / "mmlaws"

# package -> what of ours it may import besides itself and ``errors`` (the shared error types).
# "x" allows all of package x, "x.y" only x's module y (and what is inside it). A package named
# here need not exist yet; a top-level package or module missing here fails the test.
RULES: dict[str, set[str]] = {
    "errors": set(),
    # pure math: law forms, fitting, intervals, the run-record schema; never training or files
    "laws": set(),
    # CM3 and causal transforms on token arrays
    "objectives": set(),
    # the decoder and its presets; the one vocabulary layout table is data's
    "model": {"data.vocab"},
    # what runs while training: layouts, shards, packing, mixtures (CM3 per document), loaders
    "data": {"objectives"},
    # offline dataset building (sources, tokenizers): it writes what data reads
    "corpora": {"data", "objectives", "model"},
    # training reads only the run-record schema and the spike rule of laws, never analysis
    "train": {"model", "data", "objectives", "laws.records", "laws.spikes"},
    # phenomena on run records
    "analysis": {"laws"},
    # a gin file by path or by packaged name (imports nothing of ours)
    "config_files": set(),
    # sweeps of training runs, read back through the run-record schema
    "sweep": {"laws.records", "config_files"},
    # a study end to end sits on top of everything it runs
    "study": {"train", "data", "laws", "analysis", "model", "corpora", "sweep"},
    # from a budget and a modality mix to N, D, loss, barrier, memory (train's planner) and data
    "plan": {"laws", "model", "train.memory", "data.shards"},
    # the entry point reaches its jobs through gin, not imports; ``mmlaws plan`` is the planner's
    # own command line; it finds gin files by name
    "main": {"config_files", "plan.cli"},
    # the package root stays light: it imports nothing
    "mmlaws": set(),
}
ALWAYS = {"errors"}
# A module that warns DeprecationWarning when imported is a re-export of a moved module, kept one
# release: it may also import the package its contents moved to.
MOVED_TO = {"laws": {"study"}, "data": {"corpora"}}
# Imports that break a rule today and are being moved; each must still occur (remove it here
# when it is gone, so that this list only shrinks).
PENDING: set[tuple[str, str]] = set()  # known violations being moved (none)


def _package(rel: pathlib.PurePath) -> str:
    """``laws/fit.py`` -> ``laws``, ``sweep.py`` -> ``sweep``, ``__init__.py`` -> ``mmlaws``."""
    if len(rel.parts) == 1:
        return "mmlaws" if rel.name == "__init__.py" else rel.stem
    return rel.parts[0]


def _module_of(rel: pathlib.PurePath) -> list[str]:
    """The dotted module path of a file below ``mmlaws`` (a package's ``__init__`` is the
    package), as the parts after ``mmlaws``."""
    parts = list(rel.with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def imports(source: str, rel: pathlib.PurePath) -> list[tuple[int, str]]:
    """(line, what of ours is imported, after ``mmlaws.``) for every import in ``source``."""
    here = _module_of(rel)
    package = here if rel.name == "__init__.py" else here[:-1]
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this file's package
                base = ["mmlaws", *package[:len(package) - node.level + 1]]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names = [f"{module}.{a.name}" for a in node.names]
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant)):
            names = [str(node.args[0].value)]
        else:
            continue
        out += [(node.lineno, n.removeprefix("mmlaws.")) for n in names
                if n.startswith("mmlaws.")]
    return out


def _warns_deprecation(source: str) -> bool:
    """Whether the module calls ``warnings.warn(..., DeprecationWarning, ...)`` at import, or
    says in its docstring's first word that it is ``Deprecated`` (the old paths of a moved
    package that warn through a shared helper, and that helper)."""
    tree = ast.parse(source)
    doc = ast.get_docstring(tree) or ""
    if doc.startswith("Deprecated"):
        return True
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            call = node.value
            if getattr(call.func, "attr", None) == "warn" and any(
                    getattr(a, "id", None) == "DeprecationWarning" for a in call.args):
                return True
    return False


def _allowed(target: str, rules: set[str]) -> bool:
    return any(target == r or target.startswith(r + ".") for r in rules)


def violations(root: pathlib.Path) -> tuple[list[str], set[tuple[str, str]]]:
    """(every import against the rules, as ``file:line: package imports target``; the PENDING
    entries that occurred)."""
    found, pending_seen = [], set()
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        pkg = _package(rel)
        if pkg not in RULES:
            found.append(f"{rel}: top-level {pkg!r} has no rule in RULES")
            continue
        source = path.read_text()
        allowed = RULES[pkg] | ALWAYS
        if _warns_deprecation(source):
            allowed = allowed | MOVED_TO.get(pkg, set())
        for line, target in imports(source, rel):
            if target.split(".")[0] == pkg or _allowed(target, allowed):
                continue
            key = next((p for p in PENDING if p[0] == rel.as_posix()
                        and _allowed(target, {p[1]})), None)
            if key:
                pending_seen.add(key)
                continue
            found.append(f"{rel}:{line}: {pkg} imports mmlaws.{target}")
    return found, pending_seen


def test_imports_point_down():
    found, pending_seen = violations(SRC)
    assert found == [], "imports against DESIGN.md's directions:\n" + "\n".join(found)
    gone = PENDING - pending_seen
    assert not gone, f"no longer imported, remove from PENDING: {sorted(gone)}"


def _tree(tmp_path: pathlib.Path, files: dict[str, str]) -> pathlib.Path:
    root = tmp_path / "mmlaws"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    return root


@pytest.mark.parametrize("name, text, needle", [
    ("laws/fit.py", "def f():\n    from mmlaws.train import loop\n", "laws imports mmlaws.train"),
    ("laws/fit.py", "from ..study import report\n", "laws imports mmlaws.study.report"),
    ("laws/fit.py", "import importlib\nimportlib.import_module('mmlaws.data.shards')\n",
     "laws imports mmlaws.data.shards"),
    ("train/step.py", "from mmlaws.laws import fit_unimodal\n", "train imports mmlaws.laws.fit"),
    ("train/step.py", "import mmlaws.analysis\n", "train imports mmlaws.analysis"),
    ("analysis/x.py", "from mmlaws.train.loop import train\n", "analysis imports mmlaws.train"),
    ("model/x.py", "from mmlaws.data.shards import PRESETS\n", "model imports mmlaws.data.shards"),
    ("data/x.py", "from mmlaws.corpora import text\n", "data imports mmlaws.corpora"),
    ("planner.py", "x = 1\n", "top-level 'planner' has no rule"),
])
def test_the_checker_finds_an_import_against_the_rules(tmp_path, name, text, needle):
    found, _ = violations(_tree(tmp_path, {name: text}))
    assert len(found) == 1 and needle in found[0], found


def test_the_checker_lets_allowed_imports_and_moved_module_shims_pass(tmp_path):
    root = _tree(tmp_path, {
        "train/step.py": "from mmlaws.laws.records import RunLogWriter\n"
                         "from mmlaws.errors import ConfigError\nfrom . import state\n",
        "model/presets.py": "from mmlaws.data.vocab import PAPER\n",
        "study/x.py": "def f():\n    from mmlaws.corpora import build\n",
        "laws/jobs.py": """
            import warnings
            from mmlaws.study.fit_jobs import fit_runs
            warnings.warn("moved", DeprecationWarning, stacklevel=2)
            """,
        "data/build.py": """
            import warnings
            from mmlaws.corpora.build import build_dataset
            warnings.warn("moved to mmlaws.corpora", DeprecationWarning)
            """,
    })
    assert violations(root) == ([], set())

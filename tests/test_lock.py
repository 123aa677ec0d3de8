"""requirements/constraints.txt: portable pins, exactly what setup.cfg's requirements pull in."""

import importlib.util
import pathlib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = pathlib.Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("lock", REPO / "requirements" / "lock.py")
lock = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lock)


def _pins() -> dict[str, Version]:
    pins = {}
    for n, line in enumerate(lock.CONSTRAINTS.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        req = Requirement(line)
        (only,) = req.specifier  # one exact pin a line
        assert only.operator == "==" and not req.extras and req.marker is None, (n, line)
        name = canonicalize_name(req.name)
        assert name not in pins, f"line {n}: {req.name} pinned twice"
        pins[name] = Version(only.version)
    return pins


def test_pins_have_no_local_version_labels():
    # A label such as +cpu names a build the public index does not serve (PEP 440: `==X`
    # already matches a local `X+label`).
    local = {name: str(v) for name, v in _pins().items() if v.local is not None}
    assert not local, local


def test_declared_requirements_are_pinned_within_their_ranges():
    pins = _pins()
    for req in lock.declared():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req} (setup.cfg) is not pinned"
        assert req.specifier.contains(pins[name], prereleases=True), (str(req), pins[name])


def test_pins_are_the_closure_of_the_declared_requirements():
    """Every pin is reachable from setup.cfg (nothing swept in by hand), and everything
    reachable is pinned; reachability read from this environment's installed metadata."""
    try:
        reached = set(lock.closure(lock.declared()))
    except LookupError as err:
        pytest.skip(f"the locked extras are not all installed here: {err}")
    pins = set(_pins())
    assert not pins - reached, f"pinned but required by nothing: {sorted(pins - reached)}"
    assert not reached - pins, f"required but not pinned: {sorted(reached - pins)}"


def test_markers_and_extras_decide_what_is_reached(tmp_path):
    cfg = tmp_path / "setup.cfg"
    cfg.write_text("[options]\ninstall_requires =\n    packaging\n    # a comment\n"
                   "    nothing-here; python_version < '3'\n"
                   "[options.extras_require]\nx =\n    pytest\n")
    assert [str(r) for r in lock.declared(cfg, ("x",))] == [
        "packaging", 'nothing-here; python_version < "3"', "pytest"]
    reached = lock.closure(lock.declared(cfg, ()))
    assert set(reached) == {"packaging"}  # the marker keeps nothing-here out
    with pytest.raises(KeyError, match="no extra 'y'"):
        lock.declared(cfg, ("y",))
    cfg.write_text("[options]\ninstall_requires =\n    surely-not-installed-pkg\n")
    with pytest.raises(LookupError, match="surely-not-installed-pkg"):
        lock.closure(lock.declared(cfg, ()))

"""The corpora/data seam: old import paths forward with a warning; imports point one way."""

import ast
import importlib
import pathlib
import sys
import warnings

import pytest

SRC = pathlib.Path(__file__).resolve().parents[1] / "src" / "mmlaws"

# old module -> (a name it served, the module that holds that name now)
MOVED = {
    "mmlaws.data.build": ("build_dataset", "mmlaws.corpora.build"),
    "mmlaws.data.sources.text": ("chunks", "mmlaws.corpora.sources.text"),
    "mmlaws.data.sources.images": ("digits", "mmlaws.corpora.sources.images"),
    "mmlaws.data.sources.image_build": ("fit_set", "mmlaws.corpora.images"),
    "mmlaws.data.sources.speech": ("stdlib_sentences", "mmlaws.corpora.sources.speech"),
    "mmlaws.data.sources.speech_build": ("pieces", "mmlaws.corpora.speech"),
    "mmlaws.data.tokenizers.bpe": ("BPE", "mmlaws.corpora.tokenizers.bpe"),
    "mmlaws.data.tokenizers.vq": ("KMeansTrainer", "mmlaws.corpora.tokenizers.vq"),
    "mmlaws.data.tokenizers.speech_units": ("Mfcc", "mmlaws.corpora.tokenizers.speech_units"),
}
# names an old module served from a second new home
ALSO = {
    "mmlaws.data.build": ("SourceMissing", "mmlaws.corpora.sources"),
    "mmlaws.data.sources.text": ("shared_tokenizer", "mmlaws.corpora.text"),
    "mmlaws.data.sources.speech": ("Espeak", "mmlaws.corpora.sources.espeak_ng"),
    "mmlaws.data.sources.speech_build": ("ESPEAK", "mmlaws.corpora.sources.speech"),
    "mmlaws.data.tokenizers.vq": ("nearest", "mmlaws.corpora.tokenizers.kmeans"),
    "mmlaws.data.tokenizers.speech_units": ("minibatch_kmeans", "mmlaws.corpora.tokenizers.kmeans"),
}
# old module -> its builders, which still take the old keyword arguments
BUILDERS = {
    "mmlaws.data.sources.text": ("mmlaws.corpora.text", ["build_text", "build_molecules"]),
    "mmlaws.data.sources.image_build": ("mmlaws.corpora.images", ["build_images"]),
    "mmlaws.data.sources.speech_build": ("mmlaws.corpora.speech", ["build_speech_text"]),
}


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_path_warns_and_serves_the_new_objects(old, monkeypatch):
    for name in [m for m in sys.modules if m == old or old.startswith(m + ".")]:
        if name.startswith("mmlaws.data."):  # the old module and its old package
            monkeypatch.delitem(sys.modules, name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    messages = [str(w.message) for w in caught if w.category is DeprecationWarning]
    assert any(m.startswith(f"{old} has moved to mmlaws.corpora") for m in messages), messages
    assert not [w.filename for w in caught if str(SRC) in w.filename]  # points at the importer
    for name, new in [MOVED[old], *([ALSO[old]] if old in ALSO else [])]:
        assert getattr(module, name) is getattr(importlib.import_module(new), name)
    new, names = BUILDERS.get(old, ("", []))
    for name in names:
        assert getattr(module, name).__wrapped__ is getattr(importlib.import_module(new), name)
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        module.nothing_here  # noqa: B018


def test_an_old_keyword_call_makes_the_options_and_warns(tmp_path):
    from mmlaws.corpora.build import BuildOptions
    from mmlaws.corpora.images import ImageOptions
    from mmlaws.data import TINY
    from mmlaws.data._moved import old_call

    def builder(options: BuildOptions, image: ImageOptions = ImageOptions(), *, order="a"):
        return options, image, order

    call = old_call(builder)
    with pytest.warns(DeprecationWarning, match="takes a BuildOptions now"):
        got = call(data_dir=tmp_path, layout=TINY, offline=True, size=16, order="b")
    assert got == (BuildOptions(tmp_path, TINY, offline=True), ImageOptions(size=16), "b")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert call(BuildOptions(tmp_path, TINY))[0].offline is False  # the new call, as is
    with pytest.warns(DeprecationWarning), pytest.raises(TypeError, match="colour"):
        call(data_dir=tmp_path, layout=TINY, colour="red")


def _imports(path: pathlib.Path) -> set[str]:
    """The ``mmlaws.*`` modules a file imports (absolute imports; the package has no others)."""
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
    return {m for m in out if m.startswith("mmlaws.")}


def test_data_does_not_import_corpora_except_the_old_paths():
    shims = {SRC / "data" / "_moved.py"} | {
        SRC / (old.removeprefix("mmlaws.").replace(".", "/") + ".py") for old in MOVED
    }
    for path in sorted((SRC / "data").rglob("*.py")):
        if path in shims or path.parent.name in ("sources", "tokenizers"):
            continue
        bad = [m for m in _imports(path) if m.startswith("mmlaws.corpora")]
        assert not bad, f"{path.relative_to(SRC)} imports {bad}"


def test_corpora_imports_only_data_objectives_model_and_errors():
    allowed = ("mmlaws.corpora", "mmlaws.data", "mmlaws.objectives", "mmlaws.model")
    allowed += ("mmlaws.errors",)
    for path in sorted((SRC / "corpora").rglob("*.py")):
        bad = [m for m in _imports(path) if not m.startswith(allowed)]
        assert not bad, f"{path.relative_to(SRC)} imports {bad}"

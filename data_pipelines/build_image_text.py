"""Build the Image-Text dataset: a caption and its image in one document.

Documents are ``caption <image> codes </image>`` (``--order text_first``, the default) or
``<image> codes </image> caption`` (``--order image_first``). Sources (each optional; the
pip-only path is digits): scikit-learn digits ("the digit 7"), Debian tuxpaint-stamps-default
(the first line of each stamp's caption file), fonts-noto-color-emoji + unicode-data (emoji
names). Captions use the BPE the text builders share (trained on first use and cached under
``<data_dir>/tokenizers/``; ``--bpe FILE`` for another); images use the same image tokenizer as
``build_images.py``. See ``data_pipelines/README_images.md``.

    python data_pipelines/build_image_text.py --data_dir data --layout SMALL --token_budget 2e6 \\
        [--order text_first] [--bpe FILE] [--image_size 32] [--tokenizer kmeans]
"""

import argparse
import functools
import sys

from mmlaws.corpora import build, images
from mmlaws.corpora.sources import images as image_sources

if __name__ == "__main__":
    parser = argparse.ArgumentParser(add_help=False)
    images.add_image_flags(parser)
    parser.add_argument("--order", choices=images.ORDERS, default="text_first")
    parser.add_argument(
        "--bpe", default=None, help="a BPE file (default: the text builders' shared BPE)"
    )
    args, rest = parser.parse_known_args(sys.argv[1:])
    run = functools.partial(
        images.build_image_text, image=images.image_options(args), order=args.order,
        bpe_path=args.bpe,
    )  # fmt: skip
    build.main(run, image_sources.image_text_sources(args.image_size), __doc__, rest)

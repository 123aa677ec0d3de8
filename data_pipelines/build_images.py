"""Build the Images dataset: ``<image> codes </image>`` per image, codes from a learned quantiser.

Sources (each optional; the pip-only path is digits, sklearn-photos and skimage-photos):
scikit-learn digits and sample photos, scikit-image's bundled photos (random crops),
Debian openclipart-png, tuxpaint-stamps-default and fonts-noto-color-emoji + unicode-data.
Images are made square at ``--image_size`` px (a multiple of 8; 32 gives 16 codes, 18 tokens).
The tokenizer (``--tokenizer kmeans``, the default, or ``vqvae``) is fitted on training images
and cached under ``<data_dir>/tokenizers/``; see ``data_pipelines/README_images.md``.

    python data_pipelines/build_images.py --data_dir data --layout SMALL --token_budget 2e6 \\
        [--image_size 32] [--tokenizer kmeans] [--image_tokenizer FILE] [--fit_images 4000] \\
        [--crops_per_photo 500,100]
"""

import argparse
import functools
import sys

from mmlaws.corpora import build, images
from mmlaws.corpora.sources import images as image_sources

if __name__ == "__main__":
    parser = argparse.ArgumentParser(add_help=False)
    images.add_image_flags(parser, crops=True)
    args, rest = parser.parse_known_args(sys.argv[1:])
    run = functools.partial(images.build_images, image=images.image_options(args))
    build.main(run, image_sources.image_sources(args.image_size), __doc__, rest)

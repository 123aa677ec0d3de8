"""Deprecated: moved to :mod:`mmlaws.corpora.images`.

This path goes away in the next release.
"""

from mmlaws.corpora import images as _images
from mmlaws.data._moved import forward, old_call

__getattr__ = forward(__name__, "mmlaws.corpora.images")
build_images = old_call(_images.build_images)
build_image_text = old_call(_images.build_image_text)

"""The sample photos featkit runs on when no images are given: real photographs that scikit-image
and scikit-learn ship, so nothing is downloaded."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from featkit.io import atomic_path

__all__ = ["sample_images"]


#: Real photos shipped inside scikit-image (file names) and scikit-learn (load_sample_images).
_SKIMAGE_PHOTOS = (
    "astronaut.png", "brick.png", "camera.png", "chelsea.png", "clock_motion.png", "coffee.png",
    "coins.png", "grass.png", "gravel.png", "hubble_deep_field.jpg", "ihc.png", "microaneurysms.png",
    "moon.png", "motorcycle_left.png", "motorcycle_right.png", "page.png", "retina.jpg", "rocket.jpg",
    "text.png",
)  # fmt: skip
_SKLEARN_PHOTOS = ("china.jpg", "flower.jpg")


def _cache_dir() -> Path:
    base = os.environ.get("FEATKIT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "featkit")
    return Path(base)


def sample_images() -> Path:
    """A folder holding the ~20 real photos that scikit-image and scikit-learn ship.

    The files are copied once into ``$FEATKIT_CACHE/samples`` (default
    ``~/.cache/featkit/samples``); nothing is downloaded.

    Returns:
        The folder's path.
    """
    import skimage
    import sklearn.datasets

    sources = [Path(skimage.__file__).parent / "data" / n for n in _SKIMAGE_PHOTOS]
    sources += [Path(sklearn.datasets.__file__).parent / "images" / n for n in _SKLEARN_PHOTOS]
    folder = _cache_dir() / "samples"
    folder.mkdir(parents=True, exist_ok=True)
    for src in sources:
        dst = folder / src.name
        if src.exists() and not dst.exists():
            with atomic_path(dst) as tmp:
                shutil.copyfile(src, tmp)
    return folder

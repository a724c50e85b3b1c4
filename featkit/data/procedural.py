"""Procedural training images: dead-leaves patterns, which featkit may redistribute freely.

The dead-leaves model (Matheron 1968; Lee, Mumford & Huang, IJCV 2001) stacks opaque disks of
random colour whose radii follow a power law :math:`p(r) \\propto r^{-3}`, each falling behind
those before it, until the image is covered. Its images are scale-invariant with the occlusion
edges and the :math:`1/f^2` power spectrum of natural photographs, which is why they teach
useful low-level features (Baradad et al., NeurIPS 2021). The shipped model is trained on them
beside the sample photos whose licences allow it (``featkit/pretrained/*/PROVENANCE.md``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from featkit.io import atomic_path

__all__ = ["dead_leaves", "write_dead_leaves"]

#: Smallest and largest disk radius, as shares of the image side.
RADIUS_RANGE = (0.004, 0.25)
#: Stop once this share of the pixels is covered (the rest keeps the first disk's colour).
COVERAGE = 0.995


def dead_leaves(side: int, rng: np.random.Generator) -> np.ndarray:
    """One dead-leaves image.

    Args:
        side: width and height in pixels.
        rng: the randomness (the image is a pure function of its state).

    Returns:
        :math:`(side, side, 3)` uint8 RGB.
    """
    image = np.zeros((side, side, 3), np.uint8)
    free = np.ones((side, side), bool)
    rmin, rmax = (share * side for share in RADIUS_RANGE)
    yy, xx = np.mgrid[0:side, 0:side]
    uncovered = side * side
    while uncovered > (1 - COVERAGE) * side * side:
        # inverse CDF of p(r) ~ r^-3 on [rmin, rmax]
        u = rng.random()
        r = (rmin**-2 - u * (rmin**-2 - rmax**-2)) ** -0.5
        cx, cy = rng.uniform(-r, side + r, size=2)
        x0, x1 = max(0, int(cx - r)), min(side, int(cx + r) + 1)
        y0, y1 = max(0, int(cy - r)), min(side, int(cy + r) + 1)
        if x0 >= x1 or y0 >= y1:
            continue
        inside = (xx[y0:y1, x0:x1] - cx) ** 2 + (yy[y0:y1, x0:x1] - cy) ** 2 <= r * r
        paint = inside & free[y0:y1, x0:x1]
        count = int(paint.sum())
        if count:
            image[y0:y1, x0:x1][paint] = rng.integers(0, 256, size=3, dtype=np.uint8)
            free[y0:y1, x0:x1][paint] = False
            uncovered -= count
    if uncovered:
        image[free] = rng.integers(0, 256, size=3, dtype=np.uint8)
    return image


def write_dead_leaves(folder: str | os.PathLike, count: int, *, side: int = 384, seed: int = 0) -> list[Path]:
    """Write ``count`` dead-leaves PNGs (``leaves-0000.png``, ...) into ``folder``.

    Image ``i`` depends only on ``seed`` and ``i``, so the set is the same on every machine.

    Returns:
        The files, in order.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"leaves-{i:04d}.png"
        with atomic_path(path) as tmp:
            Image.fromarray(dead_leaves(side, np.random.default_rng([seed, i]))).save(tmp, format="PNG")
        paths.append(path)
    return paths

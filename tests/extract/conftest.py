"""Small labelled image folders made by the tests (ImageFolder layout) and features of them."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from featkit.runs.models import save_model
from featkit.runs.whitening import WHITENING_FILE, fit_whitening
from featkit.encoders import create_encoder
from featkit.features.extraction import extract
from featkit.io import write_json

#: name -> (pattern, RGB tint)
PATTERNS = {
    "stripes": (lambda yy, xx: np.sin(xx * 1.3), (1.0, 0.3, 0.2)),
    "rings": (lambda yy, xx: np.sin(np.hypot(yy - 12, xx - 12) * 1.1), (0.2, 1.0, 0.3)),
    "flat": (lambda yy, xx: np.zeros_like(xx) + 0.6, (0.3, 0.2, 1.0)),
}


def make_classes(root, per_class: int = 6, sizes=((24, 24), (20, 28)), seed: int = 0):
    """Write ``per_class`` noisy images of each pattern under ``root/<pattern>/``."""
    rng = np.random.default_rng(seed)
    for name, (pattern, tint) in PATTERNS.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            h, w = sizes[i % len(sizes)]
            yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
            grey = pattern(yy, xx) * 0.5 + 0.5 + rng.normal(0, 0.05, (h, w))
            rgb = (0.3 + 0.6 * grey)[..., None] * np.array(tint)
            Image.fromarray(np.uint8(np.clip(rgb, 0, 1) * 255)).save(root / name / f"{i:02d}.png")
    return root


@pytest.fixture(autouse=True)
def _single_thread_faiss():
    """faiss's OpenMP threads spin-wait; on the shared 2-core CI machine that makes small
    builds 50x slower, so these tests use one thread."""
    import faiss

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(threads)


@pytest.fixture(scope="session")
def classes_dir(tmp_path_factory):
    return make_classes(tmp_path_factory.mktemp("classes") / "images")


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory):
    """A run directory as `featkit train` writes it, with a randomly initialised paper-cae and
    a descriptor whitening fitted on random unit vectors."""
    d = tmp_path_factory.mktemp("run")
    model = create_encoder("paper-cae")
    save_model(d, model)
    write_json(d / "config.json", {"encoder": model.config})
    rows = np.random.default_rng(0).standard_normal((2000, 16 * 3 * 3))
    fit_whitening(rows / np.linalg.norm(rows, axis=1, keepdims=True), layer="conv2", window=3).save(d / WHITENING_FILE)
    return d


@pytest.fixture(scope="session")
def pixel_feats(classes_dir, tmp_path_factory):
    """Raw-pixel features of ``classes_dir`` (pooled 2 x 2), with manifest."""
    out = tmp_path_factory.mktemp("feats") / "pixels.npy"
    extract(classes_dir, "pixels", out, grid=2, workers=0)
    return out

"""featkit.tasks.index: index choice, exactness, tuned recall, queries and their errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from featkit.errors import FeatkitError, OutputExistsError, ShapeError
from featkit.features.extraction import extract
from featkit.tasks.index import build_index, choose_kind, exact_knn, index_manifest_path, load_index
from featkit.tasks.search import search


def blobs(n: int, dim: int = 16, centres: int = 20, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centres, dim))
    return (c[rng.integers(centres, size=n)] + 0.3 * rng.normal(size=(n, dim))).astype(np.float32)


def test_auto_is_exact_below_the_limit_and_approximate_above():
    assert choose_kind(99_999) == "flat" and choose_kind(100_000) != "flat"


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_flat_matches_brute_force(metric):
    x, q = blobs(500), blobs(7, seed=1)
    index = build_index(x, metric=metric)
    d, i = index.search_vectors(q, 5)
    if metric == "l2":
        brute = np.linalg.norm(q[:, None] - x[None], axis=2)
    else:
        xn, qn = x / np.linalg.norm(x, axis=1, keepdims=True), q / np.linalg.norm(q, axis=1, keepdims=True)
        brute = 1 - qn @ xn.T
    assert_true_neighbours(i, d, brute)
    de, ie = exact_knn(q, x, 5, metric)
    assert_true_neighbours(ie, de, brute)


def assert_true_neighbours(found: np.ndarray, distances: np.ndarray, brute: np.ndarray, tol: float = 1e-4) -> None:
    """``found`` are the k nearest by ``brute`` (float64 distances), in order, with their distances.

    faiss and featkit's own search compute distances in float32 (1e-4 covers their rounding on
    these 16-dimensional vectors of norm < 10), so two neighbours closer than that may come in
    either order: only the distances are compared, and the indices where no such near-tie is.
    """
    k = found.shape[1]
    ranked = np.sort(brute, axis=1)[:, :k]
    np.testing.assert_allclose(np.take_along_axis(brute, found, axis=1), ranked, atol=tol)
    np.testing.assert_allclose(distances, ranked, atol=tol)
    order = np.argsort(brute, axis=1)
    gaps = np.diff(np.sort(brute, axis=1)[:, : k + 1], axis=1)  # to the next neighbour, the k-th's included
    clear = (gaps > 2 * tol) & np.concatenate([np.ones((len(gaps), 1), bool), gaps[:, :-1] > 2 * tol], axis=1)
    np.testing.assert_array_equal(found[clear], order[:, :k][clear])


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_indexes_are_tuned_to_the_target_recall(kind):
    data = blobs(6200)
    x, q = data[:6000], data[6000:]  # held-out queries from the same distribution
    index = build_index(x, kind=kind, target_recall=0.9)
    settings = index.manifest["index"]
    assert settings["kind"] == kind and settings["recall_at_10"] >= 0.9
    _, truth = exact_knn(q, x, 10)
    _, found = index.search_vectors(q, 10)
    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)])
    assert recall >= 0.85  # held-out queries: close to the estimate


def test_ivfpq_compresses():
    import faiss

    x = blobs(12_000, dim=32, centres=400)
    index = build_index(x, kind="ivfpq")
    assert index.manifest["index"]["factory"].endswith("PQ16x4fs,Refine(SQ8)") and len(index) == 12_000
    assert index.manifest["index"]["recall_at_10"] >= 0.8
    flat = build_index(x, kind="flat")
    assert len(faiss.serialize_index(index.index)) < 0.5 * len(faiss.serialize_index(flat.index))
    with pytest.raises(FeatkitError, match="at least"):
        build_index(x[:500], kind="ivfpq")


def test_k_larger_than_the_collection_returns_all():
    d, i = build_index(blobs(4)).search_vectors(blobs(2, seed=3), 10)
    assert i.shape == (2, 4) and sorted(i[0]) == [0, 1, 2, 3]


def test_wrong_dimension_is_a_clear_error():
    index = build_index(blobs(50))
    with pytest.raises(ShapeError, match="dimension 16"):
        index.search_vectors(np.zeros((1, 8), np.float32), 3)


def test_errors_hold_under_python_O(tmp_path):
    np.save(tmp_path / "x.npy", blobs(30))
    np.save(tmp_path / "q.npy", np.zeros((2, 5), np.float32))
    code = (
        "from featkit.tasks.index import build_index\n"
        "from featkit.tasks.search import search\n"
        f"build_index(r'{tmp_path / 'x.npy'}', r'{tmp_path / 'x.faiss'}')\n"
        "try:\n"
        f"    search(r'{tmp_path / 'x.faiss'}', [r'{tmp_path / 'q.npy'}'])\n"
        "except Exception as e:\n"
        "    print(type(e).__name__, e)\n"
    )
    out = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True)
    assert out.stdout.startswith("ShapeError") and "dimension 16" in out.stdout, out.stderr


@pytest.mark.parametrize("model", ["paper-cae", "run"])
def test_image_queries_find_themselves(classes_dir, tmp_path, run_dir, model):
    """Queries are encoded as the index's rows were: the same descriptors, whitened for a run."""
    feats = tmp_path / "f.npy"
    manifest = extract(classes_dir, run_dir if model == "run" else model, feats, grid=2, workers=0)
    assert manifest["whitened"] == (model == "run")
    build_index(feats, tmp_path / "f.faiss")
    assert index_manifest_path(tmp_path / "f.faiss").is_file()
    query = sorted((classes_dir / "rings").iterdir())[2]
    (result,) = search(tmp_path / "f.faiss", [query], k=3)
    assert result.query == str(query.resolve())
    assert result.neighbours[0].path == str(query.resolve()) and result.neighbours[0].distance < 1e-5
    assert all("rings" in hit.path for hit in result.neighbours)
    with pytest.raises(OutputExistsError):
        build_index(feats, tmp_path / "f.faiss")


def test_queries_from_another_model_are_refused(classes_dir, tmp_path, pixel_feats):
    extract(classes_dir, "paper-cae", tmp_path / "cae.npy", workers=0, grid=2, raw=True)  # 16 x 2 x 2
    build_index(tmp_path / "cae.npy", tmp_path / "cae.faiss")
    extract(classes_dir, "timm:resnet18", tmp_path / "r.npy", layer="stage0", workers=0, raw=True)  # also 64-D
    with pytest.raises(FeatkitError, match="differ in fingerprint"):
        search(tmp_path / "cae.faiss", [tmp_path / "r.npy"])
    results = search(tmp_path / "cae.faiss", [tmp_path / "cae.npy"], k=1)
    assert [r.query for r in results] == [r.neighbours[0].path for r in results]


def test_missing_manifest_and_corrupt_index(tmp_path):
    build_index(blobs(20), tmp_path / "a.faiss")
    index_manifest_path(tmp_path / "a.faiss").unlink()
    with pytest.raises(FeatkitError, match="manifest"):
        load_index(tmp_path / "a.faiss")
    build_index(blobs(20), tmp_path / "b.faiss")
    (tmp_path / "b.faiss").write_bytes((tmp_path / "b.faiss").read_bytes()[:40])  # truncated
    with pytest.raises(FeatkitError, match="unreadable"):
        load_index(tmp_path / "b.faiss")
    (tmp_path / "b.faiss").write_bytes(b"garbage")
    with pytest.raises(FeatkitError, match="not a faiss index"):
        load_index(tmp_path / "b.faiss")


def test_nan_vectors_are_refused():
    x = blobs(10)
    x[3, 2] = np.nan
    with pytest.raises(ShapeError, match="row 3"):
        build_index(x)

"""featkit.tasks.clustering and featkit.tasks.evaluation: scores that can fail, and one-line errors."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from featkit.tasks.clustering import cluster, clusters_path
from featkit.errors import FeatkitError, OutputExistsError, ShapeError
from featkit.tasks.evaluation import evaluate_retrieval, retrieval_scores
from featkit.features.files import class_labels, load_features


def test_labels_come_from_class_subfolders(pixel_feats):
    _, manifest = load_features(pixel_feats)
    labels, names = class_labels(manifest)
    assert names == ["flat", "rings", "stripes"] and np.bincount(labels).tolist() == [6, 6, 6]


@pytest.mark.parametrize("method", ["kmeans", "agglomerative"])
def test_clusters_recover_the_pattern_classes(pixel_feats, tmp_path, method):
    out = tmp_path / "labels.csv"
    result = cluster(pixel_feats, 3, method=method, out=out)
    assert result.nmi > 0.9 and result.ari > 0.9 and result.silhouette > 0.3
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 18 and set(rows[0]) == {"path", "cluster", "class"}
    assert rows[0]["class"] in rows[0]["path"]


def test_shuffled_labels_score_near_zero(pixel_feats):
    feats, _ = load_features(pixel_feats)
    labels = np.random.default_rng(0).permutation(np.repeat([0, 1, 2], 6))
    assert retrieval_scores(feats, labels)["mAP"] < 0.6


def test_dbscan_and_pca(pixel_feats, tmp_path):
    result = cluster(pixel_feats, method="dbscan", pca=3, min_samples=3, out=tmp_path / "d.csv")
    assert result.n_clusters >= 2 and result.nmi > 0.5


def test_default_csv_sits_beside_the_manifest_and_is_not_overwritten(pixel_feats):
    result = cluster(pixel_feats, 3)
    assert result.csv_path == clusters_path(pixel_feats) == pixel_feats.with_suffix(".clusters.csv")
    with pytest.raises(OutputExistsError):
        cluster(pixel_feats, 3)
    cluster(pixel_feats, 2, overwrite=True)


def test_cluster_errors(pixel_feats):
    with pytest.raises(FeatkitError, match="cannot make 40 clusters from 18 samples"):
        cluster(pixel_feats, 40, out=None)
    with pytest.raises(FeatkitError, match="needs the number of clusters"):
        cluster(np.zeros((5, 2)), None)
    with pytest.raises(FeatkitError, match="PCA to 50"):
        cluster(np.random.rand(10, 4), 2, pca=50)
    x = np.random.rand(10, 4)
    x[7, 1] = np.nan
    with pytest.raises(ShapeError, match="row 7"):
        cluster(x, 2)


def test_retrieval_scores_match_sklearn():
    rng = np.random.default_rng(0)
    x, labels = rng.normal(size=(40, 5)), rng.integers(0, 3, size=40)
    scores = retrieval_scores(x, labels, metric="l2")
    aps, r1 = [], []
    for q in range(40):
        others = np.delete(np.arange(40), q)
        dist = np.linalg.norm(x[others] - x[q], axis=1)
        aps.append(average_precision_score(labels[others] == labels[q], -dist))
        r1.append(labels[others][np.argmin(dist)] == labels[q])
    assert scores["mAP"] == pytest.approx(np.mean(aps)) and scores["recall@1"] == pytest.approx(np.mean(r1))
    assert scores["recall@1"] <= scores["recall@5"] <= scores["recall@10"]


def test_evaluate_retrieval_on_files(pixel_feats, tmp_path):
    scores = evaluate_retrieval(pixel_feats)
    assert scores["mAP"] > 0.9 and scores["recall@1"] == 1.0 and scores["queries"] == 18
    np.save(tmp_path / "bare.npy", np.zeros((3, 2), np.float32))
    with pytest.raises(FeatkitError, match="no manifest"):
        evaluate_retrieval(tmp_path / "bare.npy")
    with pytest.raises(FeatkitError, match="two or more"):
        retrieval_scores(np.eye(3), np.arange(3))

"""`featkit cluster`: group extracted features; labels to CSV, scores printed."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from featkit.cli._common import OverwriteOpt, out_console
from featkit.cli.index import Metric, MetricOpt
from featkit.choices import CLUSTER_METHODS

Method = Enum("Method", {m: m for m in CLUSTER_METHODS}, type=str)


def cluster(
    features: Annotated[Path, typer.Argument(help="Features file from `featkit extract` (.npy).")],
    k: Annotated[Optional[int], typer.Option("-k", "--k", help="Number of clusters (kmeans, agglomerative).")] = None,
    method: Annotated[Method, typer.Option("--method", help="kmeans, agglomerative (Ward) or dbscan.")] = Method.kmeans,
    pca: Annotated[Optional[int], typer.Option("--pca", min=1, help="Reduce to D dimensions with PCA first.")] = None,
    metric: MetricOpt = Metric.cosine,
    eps: Annotated[Optional[float], typer.Option("--eps", min=0.0, help="DBSCAN radius (default: median distance to the min-samples-th neighbour).")] = None,
    min_samples: Annotated[int, typer.Option("--min-samples", min=1, help="DBSCAN core-point size.")] = 5,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Labels CSV (default: FEATURES with .clusters.csv).")] = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Cluster FEATURES; with class subfolders, score against them (NMI, ARI)."""
    from featkit.tasks.clustering import cluster as cluster_features

    result = cluster_features(
        features, k, method=method.value, pca=pca, metric=metric.value, eps=eps, min_samples=min_samples,
        out=out, overwrite=overwrite,
    )  # fmt: skip
    out_console.print(f"clusters: {result.n_clusters}" + (f" (+{int((result.labels < 0).sum())} noise)" if (result.labels < 0).any() else ""))
    out_console.print("silhouette: " + (f"{result.silhouette:.4f}" if result.silhouette is not None else "undefined"))
    if result.nmi is not None:
        out_console.print(f"NMI: {result.nmi:.4f}\nARI: {result.ari:.4f}")
    out_console.print(f"labels: {result.csv_path}", soft_wrap=True)

"""`featkit index`: a faiss index over extracted features."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from featkit.cli._common import OverwriteOpt, err_console
from featkit.choices import INDEX_KINDS, METRICS

Kind = Enum("Kind", {k: k for k in INDEX_KINDS}, type=str)
Metric = Enum("Metric", {m: m for m in METRICS}, type=str)
MetricOpt = Annotated[Metric, typer.Option("--metric", help="cosine (rows L2-normalised) or l2.")]


def index(
    features: Annotated[Path, typer.Argument(help="Features file from `featkit extract` (.npy).")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Index file to write (default: FEATURES with .faiss).")] = None,
    kind: Annotated[Kind, typer.Option("--kind", help="auto: exact flat below 100k vectors, tuned IVF above; or flat, ivf, hnsw, ivfpq (compressed).")] = Kind.auto,
    metric: MetricOpt = Metric.cosine,
    target_recall: Annotated[float, typer.Option("--target-recall", min=0.0, max=1.0, help="Recall@10 approximate indexes are tuned to reach.")] = 0.95,
    overwrite: OverwriteOpt = False,
) -> None:
    """Build a faiss index over FEATURES for `featkit search` (manifest kept beside it)."""
    from featkit.tasks.index import build_index

    out = out or features.with_suffix(".faiss")
    with err_console.status(f"indexing {features}"):
        built = build_index(features, out, kind=kind.value, metric=metric.value, target_recall=target_recall, overwrite=overwrite)
    settings = built.manifest["index"]
    line = f"wrote {out}: {settings['kind']} ({settings['factory']}, {settings['metric']}) over {settings['count']} x {settings['dim']}"
    if "recall_at_10" in settings:
        line += f"; search breadth {settings['breadth']}, estimated recall@10 {settings['recall_at_10']:.3f}"
    err_console.print(line, soft_wrap=True)

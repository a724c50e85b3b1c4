"""`featkit evaluate`: score features against labels."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from featkit.cli._common import out_console
from featkit.cli.index import Metric, MetricOpt

evaluate_app = typer.Typer(help="Score features against the classes of their image subfolders.", no_args_is_help=True)


@evaluate_app.command("retrieval")
def retrieval(
    features: Annotated[Path, typer.Argument(help="Features file from `featkit extract` of images in class subfolders.")],
    metric: MetricOpt = Metric.cosine,
) -> None:
    """Leave-one-out retrieval: mAP and recall@1/5/10 (a same-class image among the k nearest)."""
    from featkit.tasks.evaluation import evaluate_retrieval

    scores = evaluate_retrieval(features, metric=metric.value)
    table = Table(title=f"retrieval on {features} ({scores['queries']} queries, {scores['classes']} classes)")
    for name in ("mAP", "recall@1", "recall@5", "recall@10"):
        table.add_column(name, justify="right")
    table.add_row(*(f"{scores[name]:.4f}" for name in ("mAP", "recall@1", "recall@5", "recall@10")))
    out_console.print(table)

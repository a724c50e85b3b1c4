"""`featkit search`: nearest images of query images or vectors."""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from featkit.cli._common import DeviceOpt, QuietOpt, count_progress, out_console


def search(
    index: Annotated[Path, typer.Argument(help="Index file from `featkit index` (.faiss).")],
    queries: Annotated[list[Path], typer.Argument(help="Query images or folders (encoded with the index's model), or .npy files of vectors.")],
    k: Annotated[int, typer.Option("-k", "--k", min=1, help="Neighbours per query (at most the collection size).")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV (query,rank,id,path,distance, and inliers when hits were verified) instead of a table.")] = False,
    rerank: Annotated[Optional[int], typer.Option("--rerank", min=0, metavar="R", show_default=False, help="Verify each image query's first R hits: match it to each at LoG keypoints, fit a homography, and put the hits with more inliers first (spatial verification; about 0.2-0.5 s per verified hit on a 2-core CPU, images at most 512 px). Default: 5 for image queries, none for vectors. 0: rank by distance alone.")] = None,
    device: DeviceOpt = "auto",
    quiet: QuietOpt = False,
) -> None:
    """Find the K nearest images in INDEX for each QUERY; the first 5 hits of an image query are re-ranked by spatial verification (--rerank)."""
    from featkit.tasks.search import search as search_index

    if as_json and as_csv:
        raise typer.BadParameter("choose one of --json and --csv")
    with count_progress("verify hits", quiet) as on_progress:
        results = search_index(index, queries, k, rerank=rerank, device=device, on_progress=on_progress)
    verified = any(hit.inliers is not None for result in results for hit in result.neighbours)
    if as_json:
        json.dump([asdict(r) for r in results], sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif as_csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(["query", "rank", "id", "path", "distance", *(["inliers"] if verified else [])])
        for result in results:
            for hit in result.neighbours:
                inliers = [("" if hit.inliers is None else hit.inliers)] if verified else []
                writer.writerow([result.query, hit.rank, hit.id, hit.path, f"{hit.distance:.6g}", *inliers])
    else:
        for result in results:
            table = Table(title=f"nearest to {result.query}")
            for column in ("rank", "distance", *(["inliers"] if verified else []), "id", "path"):
                table.add_column(column, justify="right" if column != "path" else "left")
            for hit in result.neighbours:
                inliers = [("" if hit.inliers is None else str(hit.inliers))] if verified else []
                table.add_row(str(hit.rank), f"{hit.distance:.4g}", *inliers, str(hit.id), hit.path or "")
            out_console.print(table)

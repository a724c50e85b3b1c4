"""``report.html``: one self-contained page per run (settings, metrics, figures inlined)."""

from __future__ import annotations

import base64
import csv
import html
import json
import os
from pathlib import Path
from typing import Any

from featkit.io import atomic_path, read_json

__all__ = ["write_report"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; } td.key { text-align: left; font-weight: 600; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
pre { background: #f7f7f7; padding: 1em; overflow-x: auto; font-size: 0.85em; }
"""


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'


def _table(rows: list[dict[str, Any]], limit: int = 25) -> str:
    if not rows:
        return "<p>no epochs recorded</p>"
    if len(rows) > limit:  # evenly spaced epochs, always the first and the last
        step = (len(rows) - 1) / (limit - 1)
        rows = [rows[round(i * step)] for i in range(limit)]
    head = "".join(f"<th>{html.escape(k)}</th>" for k in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row.values()) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return html.escape(str(value))
    return str(int(number)) if number.is_integer() and abs(number) < 1e9 else f"{number:.4g}"


def write_report(run_dir: str | os.PathLike) -> Path:
    """Write ``run_dir/report.html`` from the run's files; figures are embedded as base64.

    Args:
        run_dir: a run directory holding ``config.json`` and ``metrics.csv`` (``summary.json``,
            ``curves.png`` and ``reconstructions/*.png`` are included when present).

    Returns:
        The report's path.
    """
    run_dir = Path(run_dir)
    config = read_json(run_dir / "config.json")
    with open(run_dir / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    parts = [f"<h1>featkit run: {html.escape(run_dir.name)}</h1>"]
    train = config["train"]
    data = config["data"]
    overview = {
        "encoder": f"{config['encoder']['name']} {json.dumps(config['encoder']['args'])}",
        "loss": f"{config['loss']['spec']} (weights {json.dumps(config['loss']['weights'])})",
        "preset": config["preset"],
        "optimizer": f"{train['optimizer']} lr={train['lr']} momentum={train['momentum']} schedule={train['schedule']}",
        "batches": f"batch_size={train['batch_size'] or 'full'} crop={train['crop'] or 'whole images'}",
        "images": f"{data['images']} from {data['folder']} ({len(data['skipped'])} skipped)",
        "device": f"{config['device']} x {config['world_size']} process(es)",
    }
    summary_path = run_dir / "summary.json"
    if summary_path.is_file():
        summary = read_json(summary_path)
        overview["epochs"] = f"{summary['epochs']} in {summary['seconds']:.1f} s"
        overview["final (whole images)"] = ", ".join(f"{k}={v:.4g}" for k, v in summary["final"].items())
    parts.append("<table>" + "".join(f"<tr><td class='key'>{html.escape(k)}</td><td style='text-align:left'>"
                                     f"{html.escape(str(v))}</td></tr>" for k, v in overview.items()) + "</table>")  # fmt: skip
    if data["skipped"]:
        items = "".join(f"<li>{html.escape(s['path'])}: {html.escape(s['reason'])}</li>" for s in data["skipped"])
        parts.append(f"<h2>Skipped files</h2><ul>{items}</ul>")
    if (run_dir / "curves.png").is_file():
        parts.append("<h2>Learning curves (Fig. 5)</h2>" + _img(run_dir / "curves.png"))
    parts.append("<h2>Metrics per epoch (unweighted components)</h2>" + _table(rows))
    recon = sorted((run_dir / "reconstructions").glob("*.png"))
    if recon:
        parts.append("<h2>Reconstructions (Figs. 6-7)</h2>")
        parts += [f"<h3>{html.escape(p.stem.replace('_', ' '))}</h3>{_img(p)}" for p in recon]
    parts.append("<h2>config.json</h2><pre>" + html.escape(json.dumps(config, indent=2)) + "</pre>")
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>featkit {html.escape(run_dir.name)}</title>"
            f"<style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>")  # fmt: skip
    path = run_dir / "report.html"
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path

"""Reproducing section 4: ``pl`` versus ``pl+sfl`` on the same photos with the same seed.

The paper reports the per-band SFL after 2000 epochs as (18.9, 5.69, 1.37)e-3 for PL and
(7.08, 2.65, 1.34)e-3 for PL+SFL (bands sigma = 0.8, 1.6, 3.2). :func:`reproduce` trains both
losses with any preset, evaluates both models on the whole images, and compares the ratios.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from featkit.data.images import load_images
from featkit.errors import CheckpointError
from featkit.io import ensure_new, read_json, write_json
from featkit.report.figures import plot_side_by_side
from featkit.runs.models import CONFIG_FILE, load_model
from featkit.training.config import RESUMABLE_SETTINGS, TrainConfig, stored_config
from featkit.training.images import FILES_LIST
from featkit.training.loop import TrainProgress, train
from featkit.training.probe import PROBE_COMPONENTS

__all__ = ["PAPER_RESULTS", "TARGETS", "format_table", "reproduce"]

#: Per-band SFL at 2000 epochs in the paper (section 4), for the two losses.
PAPER_RESULTS = {
    "pl": {"sfl/0.8": 18.9e-3, "sfl/1.6": 5.69e-3, "sfl/3.2": 1.37e-3},
    "pl+sfl": {"sfl/0.8": 7.08e-3, "sfl/1.6": 2.65e-3, "sfl/3.2": 1.34e-3},
}
#: Minimum improvement factor (PL-only value / PL+SFL value) featkit aims for.
TARGETS = {"sfl/0.8": 4.0, "sfl/1.6": 3.0, "sfl/3.2": 1.0, "pl": 1.0}


def reproduce(
    out: str | os.PathLike | None = None,
    *,
    config: TrainConfig | None = None,
    max_side: int = 300,
    figure_images: int = 4,
    overwrite: bool = False,
    resume: bool = False,
    on_step: Callable[[str, TrainProgress], None] | None = None,
) -> dict[str, Any]:
    """Train ``pl`` and ``pl+sfl`` with identical settings and compare them.

    Args:
        out: folder for the two runs (``pl/``, ``pl+sfl/``), ``results.json`` and
            ``reconstructions.png``; default a new folder under ``runs/``.
        config: settings shared by both runs (``loss``, ``out`` and ``max_side`` are set
            here); default the ``fast`` preset on the sample photos.
        max_side: longer image side, 300 as in the paper.
        figure_images: images in the side-by-side figure.
        overwrite: replace an existing ``out``.
        resume: continue an interrupted ``out``: a finished run is reused, an unfinished one
            continues from its checkpoint, a missing one starts. Long runs (the paper preset
            takes hours on a CPU) can so be stopped and restarted, or trained in parallel
            processes with ``featkit train --out OUT/<spec>`` and assembled here.
        on_step: called as ``on_step(loss_spec, progress)``.

    Returns:
        ``{"runs": {spec: run_dir}, "final": {spec: metrics}, "ratios": {...}, "seconds": {...},
        "met": {name: bool}, "figure": path}``; also written to ``out/results.json``.
    """
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = Path(out) if out is not None else Path("runs") / f"reproduce-{stamp}"
    if not resume:
        ensure_new(out / "results.json", overwrite=overwrite, hint="pass --overwrite to replace it, --resume to finish it,")
    base = config or TrainConfig(preset="fast")
    runs, final, seconds = {}, {}, {}
    for spec in ("pl", "pl+sfl"):
        run_config = dataclasses.replace(base, loss=spec, out=str(out / spec), max_side=max_side, overwrite=overwrite)
        step = None if on_step is None else (lambda p, spec=spec: on_step(spec, p))
        runs[spec] = _train_or_continue(run_config, step) if resume else train(run_config, on_step=step)
        summary = read_json(runs[spec] / "summary.json")
        final[spec], seconds[spec] = summary["final"], summary["seconds"]
    ratios = {k: final["pl"][k] / final["pl+sfl"][k] for k in PROBE_COMPONENTS}
    met = {k: ratios[k] >= TARGETS[k] for k in TARGETS}
    figure = _figure(runs, out / "reconstructions.png", figure_images)
    result = {
        "runs": {k: str(v) for k, v in runs.items()},
        "final": final,
        "ratios": ratios,
        "seconds": seconds,
        "targets": TARGETS,
        "met": met,
        "paper": PAPER_RESULTS,
        "figure": str(figure),
        "settings": read_json(runs["pl"] / "config.json")["train"],
    }
    write_json(out / "results.json", result)
    return result


def _train_or_continue(config: TrainConfig, on_step: Callable[[TrainProgress], None] | None) -> Path:
    """Train ``config`` unless ``config.out`` already holds it: reuse it when finished, else resume it."""
    run_dir = Path(config.out)
    if not (run_dir / CONFIG_FILE).is_file():
        return train(config, on_step=on_step)
    wanted = config.resolved().to_dict()
    stored = stored_config(run_dir).to_dict()
    differing = sorted(k for k in wanted if k not in (*RESUMABLE_SETTINGS, "out") and stored.get(k) != wanted[k])
    if differing:
        raise CheckpointError(
            f"cannot resume {run_dir}: it was trained with other settings "
            f"({', '.join(f'{k}={stored.get(k)!r}, not {wanted[k]!r}' for k in differing)})"
        )
    summary = run_dir / "summary.json"
    if summary.is_file() and read_json(summary)["epochs"] >= wanted["epochs"]:
        return run_dir
    return train(dataclasses.replace(config, resume=str(run_dir)), on_step=on_step)


def _figure(runs: dict[str, Path], path: Path, count: int) -> Path:
    files = (runs["pl"] / FILES_LIST).read_text().splitlines()[:count]
    max_side = read_json(runs["pl"] / "config.json")["train"]["max_side"]
    originals = [r.image for r in load_images(files, max_side=max_side)[0]]
    columns = {}
    for spec, run_dir in runs.items():
        model, _ = load_model(run_dir)
        with torch.no_grad():
            columns[f"trained with {spec}"] = [model(im[None])[0] for im in originals]
    return plot_side_by_side(originals, columns, path, title="original | PL only | PL + SFL (eq. 7)")


def format_table(result: dict[str, Any]) -> str:
    """A markdown table: paper and featkit values per band, ratios and targets."""
    p, f, r = result["paper"], result["final"], result["ratios"]
    lines = [
        "| term | paper PL | paper PL+SFL | paper ratio | featkit PL | featkit PL+SFL | featkit ratio | target |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in PROBE_COMPONENTS:
        if name in p["pl"]:
            paper = (f"{p['pl'][name] * 1e3:.3g}e-3", f"{p['pl+sfl'][name] * 1e3:.3g}e-3",
                     f"{p['pl'][name] / p['pl+sfl'][name]:.2f}x")  # fmt: skip
        else:
            paper = ("-", "-", "-")
        ok = "met" if result["met"][name] else "MISSED"
        lines.append(
            f"| {name} | {' | '.join(paper)} | {f['pl'][name] * 1e3:.3g}e-3 | {f['pl+sfl'][name] * 1e3:.3g}e-3 "
            f"| {r[name]:.2f}x | >= {TARGETS[name]:g}x ({ok}) |"
        )
    s = result["seconds"]
    lines.append(f"\ntraining time: pl {s['pl']:.0f} s, pl+sfl {s['pl+sfl']:.0f} s, total {s['pl'] + s['pl+sfl']:.0f} s")
    return "\n".join(lines)

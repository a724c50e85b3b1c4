"""`featkit reproduce`: section 4 of the paper, PL versus PL+SFL, with a table and a figure."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from featkit.cli._common import DeviceOpt, OverwriteOpt, QuietOpt, err_console, out_console
from featkit.choices import PRESETS

if TYPE_CHECKING:
    from featkit.training.loop import TrainProgress

__all__ = ["reproduce"]


def reproduce(
    folder: Annotated[Optional[Path], typer.Argument(help="Image folder. Default: the sample photos.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder (default: runs/reproduce-<time>).")] = None,
    preset: Annotated[str, typer.Option("--preset", help=f"Settings of both runs: {', '.join(PRESETS)}.")] = "fast",
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="Epochs (default: the preset's).")] = None,
    max_side: Annotated[int, typer.Option("--max-side", help="Longer image side in pixels (the paper's 300).")] = 300,
    seed: Annotated[int, typer.Option("--seed", help="Seed shared by both runs.")] = 0,
    device: DeviceOpt = "auto",
    quiet: QuietOpt = False,
    overwrite: OverwriteOpt = False,
    resume: Annotated[bool, typer.Option("--resume", help="Finish an interrupted OUT: reuse finished runs, continue the others.")] = False,
) -> None:
    """Train pl and pl+sfl with the same seed and print the per-band SFL beside the paper's."""
    from featkit.training.reproduce import format_table, reproduce as run_reproduce
    from featkit.training.config import TrainConfig

    def log(spec: str, p: TrainProgress) -> None:
        if p.epoch_done and not quiet:
            bands = " ".join(f"{k}={v:.3e}" for k, v in p.metrics.items() if k != "total")
            err_console.print(f"[{spec}] epoch {p.epoch}/{p.epochs} {bands} {p.seconds:.0f}s",
                              markup=False, highlight=False, soft_wrap=True)  # fmt: skip

    config = TrainConfig(data=None if folder is None else str(folder), preset=preset, epochs=epochs, seed=seed, device=device)
    result = run_reproduce(out, config=config, max_side=max_side, overwrite=overwrite, resume=resume, on_step=log)
    out_console.print(format_table(result), markup=False, highlight=False, soft_wrap=True)
    out_console.print(f"figure: {result['figure']}", markup=False, highlight=False, soft_wrap=True)

"""`featkit train`: a folder of photos -> a trained autoencoder in a run directory."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from featkit.cli._common import DeviceOpt, OverwriteOpt, QuietOpt, err_console, out_console
from featkit.choices import DEFAULT_PRESET, PRESETS

if TYPE_CHECKING:
    from featkit.training.loop import TrainProgress

__all__ = ["train"]


def _metrics_text(metrics: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.3e}" for k, v in metrics.items() if k == "pl" or k.startswith("sfl/"))


class _Bar:
    """A rich progress bar on stderr fed by :class:`TrainProgress` events."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:.2f} steps/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[metrics]}"),
            console=err_console,
            transient=False,
        )
        self.task = None
        self.first: tuple[float, int] | None = None

    def __call__(self, p: TrainProgress) -> None:
        done = (p.epoch - 1) * p.steps + p.step
        total = p.epochs * p.steps
        if self.task is None:
            self.progress.start()
            self.task = self.progress.add_task("train", total=total, completed=done, epoch="", rate=0.0, metrics="")
            self.first = (p.seconds, done)
        seconds, start = self.first
        rate = (done - start) / max(p.seconds - seconds, 1e-9) if done > start else 0.0
        self.progress.update(
            self.task, completed=done, epoch=f"{p.epoch}/{p.epochs}", rate=rate, metrics=_metrics_text(p.metrics)
        )

    def close(self) -> None:
        if self.task is not None:
            self.progress.stop()


def _log_epoch(p: TrainProgress) -> None:
    if p.epoch_done:
        err_console.print(f"epoch {p.epoch}/{p.epochs} {_metrics_text(p.metrics)} total={p.metrics['total']:.4e} "
                          f"lr={p.lr:.3g} {p.seconds:.1f}s", markup=False, highlight=False, soft_wrap=True)  # fmt: skip


def train(
    folder: Annotated[
        Optional[Path],
        typer.Argument(help="Images of any resolution: a folder (searched recursively), a .txt list of paths, or WebDataset "
                       "tar shards ('shards/train-{000000..000099}.tar'). Default: the sample photos."),
    ] = None,
    loss: Annotated[str, typer.Option("--loss", "-l", help="Loss spec, e.g. pl, sfl, pl+sfl (eq. 7), pl+0.5*sfl.")] = "pl+sfl",
    contrast: Annotated[Optional[float], typer.Option("--contrast", min=0.0, help="Weight of the dense warp-contrastive term that teaches the features to find the same place in a warped, re-lit copy (0: reconstruction alone; default: the preset's, 0.1 for standard, 0 for paper, fast and quality).")] = None,
    contrast_perspective: Annotated[float, typer.Option("--contrast-perspective", min=0.0, max=0.49, help="Largest perspective term of the contrast term's warps (0: similarity warps; 0.3: about a camera turned 30 degrees about the patch).")] = 0.0,
    encoder: Annotated[str, typer.Option("--encoder", "-e", help="Encoder name (see `featkit encoders`); with --init, the init model's.")] = "paper-cae",
    init: Annotated[Optional[str], typer.Option("--init", help="Start from this model's weights and fine-tune it on FOLDER: a shipped model (featkit-cae, see `featkit encoders`) or a run directory. Default: random weights from --seed.")] = None,
    preset: Annotated[str, typer.Option("--preset", help=f"Settings to start from: {', '.join(PRESETS)}.")] = DEFAULT_PRESET,
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="Epochs (default: the preset's).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Run directory to create (default: runs/<time>-<encoder>-<loss>).")] = None,
    resume: Annotated[Optional[Path], typer.Option("--resume", help="Continue the run in this directory (--epochs may extend it).")] = None,
    max_side: Annotated[Optional[int], typer.Option("--max-side", help="Downscale so the longer side is at most N pixels (default: native size).")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Windows per step; 0 = full batch.")] = None,
    crop: Annotated[Optional[int], typer.Option("--crop", help="Random square crops of N pixels; 0 = whole images.")] = None,
    crops_per_image: Annotated[Optional[int], typer.Option("--crops-per-image", help="Random crops per image per epoch.")] = None,
    epoch_windows: Annotated[Optional[int], typer.Option("--epoch-windows", help="Windows per epoch, whatever the folder size; 0 = one pass over the images.")] = None,
    optimizer: Annotated[Optional[str], typer.Option("--optimizer", help="sgd, adam or adamw.")] = None,
    lr: Annotated[Optional[float], typer.Option("--lr", help="Peak learning rate.")] = None,
    momentum: Annotated[Optional[float], typer.Option("--momentum", help="SGD momentum, or Adam's beta1.")] = None,
    weight_decay: Annotated[Optional[float], typer.Option("--weight-decay", help="Weight decay.")] = None,
    schedule: Annotated[Optional[str], typer.Option("--schedule", help="constant or cosine.")] = None,
    warmup: Annotated[Optional[int], typer.Option("--warmup", help="Epochs of linear learning-rate warm-up.")] = None,
    device: DeviceOpt = "auto",
    amp: Annotated[bool, typer.Option("--amp", help="bfloat16 autocast on CUDA (losses stay float32).")] = False,
    workers: Annotated[Optional[int], typer.Option("--workers", help="Processes decoding images (default: none on 2 cores, else half the cores).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the initial weights and the data order.")] = 0,
    strict: Annotated[bool, typer.Option("--strict", help="Fail before training if any file is not a usable image.")] = False,
    checkpoint_every: Annotated[int, typer.Option("--checkpoint-every", help="Epochs between checkpoints.")] = 1,
    quiet: QuietOpt = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """Train a convolutional autoencoder on a folder of images; its hidden layers are the features.

    Writes RUN_DIR/config.json, model.safetensors, whitening.safetensors (the descriptor whitening, fitted on the images at the end), metrics.csv, curves.png, reconstructions/ and report.html.

    Ctrl-C saves a checkpoint; `featkit train --resume RUN_DIR` continues exactly.
    """
    from featkit.training.config import TrainConfig
    from featkit.training.loop import train as run_training

    if resume is not None and (folder is not None or out is not None):
        raise typer.BadParameter("--resume continues a run with its own data and directory; drop FOLDER and --out")
    config = TrainConfig(
        data=None if folder is None else str(folder),
        out=None if out is None else str(out),
        encoder=encoder, init=init, loss=loss, contrast=contrast, contrast_perspective=contrast_perspective, preset=preset, epochs=epochs, optimizer=optimizer, lr=lr, momentum=momentum,
        weight_decay=weight_decay, schedule=schedule, warmup=warmup, batch_size=batch_size, crop=crop,
        crops_per_image=crops_per_image, epoch_windows=epoch_windows, workers=workers, max_side=max_side, strict=strict, seed=seed, device=device, amp=amp,
        checkpoint_every=checkpoint_every, overwrite=overwrite, resume=None if resume is None else str(resume),
    )  # fmt: skip
    bar = None if quiet else _Bar()
    seen: list[Path] = []

    def on_step(p: TrainProgress) -> None:
        seen[:] = [p.run_dir]
        (_log_epoch if bar is None else bar)(p)

    try:
        run_dir = run_training(config, on_step=on_step)
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        where = seen[0] if seen else "RUN_DIR"
        err_console.print(f"checkpoint saved; continue with: featkit train --resume {where}", markup=False, soft_wrap=True)
        raise
    finally:
        if bar is not None:
            bar.close()
    out_console.print(f"run: {run_dir}\nreport: {run_dir / 'report.html'}", highlight=False, soft_wrap=True, markup=False)

"""The training run: :func:`train` sets up the run directory and the process group, then runs
the loop step by step (one epoch's steps, their losses, the epoch's files) and finishes the run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from featkit.data.loading import default_workers, loader
from featkit.data.windows import Load
from featkit.errors import CheckpointError, NonFiniteLossError
from featkit.runs.checkpoint import remove_stale_temp_files
from featkit.runtime.allocator import reuse_freed_memory
from featkit.runtime.devices import resolve_device
from featkit.training.config import TrainConfig, TrainConfigError, resumed_config
from featkit.training.end_of_run import finish_run, reconstruction_epochs, save_reconstructions
from featkit.training.images import check_same_images, open_training_images, write_files_list
from featkit.training.optim import learning_rate
from featkit.training.run_files import (
    default_run_dir,
    prepare_run_dir,
    write_metrics,
    write_run_config,
)
from featkit.training.trainer import Trainer
from featkit.training.world import World

__all__ = ["TrainProgress", "train"]


@dataclass(frozen=True)
class TrainProgress:
    """What ``on_step`` receives after every optimisation step.

    Attributes:
        epoch: 1-based epoch of this step.
        epochs: epochs in the run.
        step: 1-based step within the epoch.
        steps: steps per epoch.
        metrics: running means over this epoch so far (``pl``, ``sfl/0.8``, ..., ``total``).
        lr: learning rate of the step.
        seconds: wall time since this call to :func:`train` began.
        epoch_done: ``True`` on an epoch's last step; ``metrics`` are then the epoch's.
        run_dir: the run directory.
    """

    epoch: int
    epochs: int
    step: int
    steps: int
    metrics: dict[str, float]
    lr: float
    seconds: float
    epoch_done: bool
    run_dir: Path


def train(config: TrainConfig, on_step: Callable[[TrainProgress], None] | None = None) -> Path:
    """Train an autoencoder and write its run directory.

    Images are decoded as steps need them (:mod:`featkit.data.windows`), so memory stays bounded
    whatever the collection's size. On the CPU this keeps freed memory in the process for the
    next step's activations (:func:`featkit.runtime.allocator.reuse_freed_memory`, process-wide,
    glibc only).

    Args:
        config: the settings; ``config.resume`` continues an existing run instead.
        on_step: called with a :class:`TrainProgress` after every step (main process only).
            Raising :class:`KeyboardInterrupt` from it stops the run like Ctrl-C.

    Returns:
        The run directory.

    Raises:
        TrainConfigError: a bad setting.
        ImageError: no usable images, or any unusable file with ``strict``.
        OutputExistsError: the run directory exists and ``overwrite`` is not set.
        NonFiniteLossError: a loss term became NaN or infinite (nothing non-finite is saved).
        CheckpointError: ``resume`` names a run without a readable checkpoint, or one whose
            images changed.
        KeyboardInterrupt: after saving a checkpoint that ``resume`` continues exactly.
    """
    started = time.perf_counter()
    if config.resume is not None:
        config, run_dir = resumed_config(config), Path(config.resume)
    else:
        config = config.resolved()
        run_dir = Path(config.out) if config.out is not None else default_run_dir(config)
    device = resolve_device(config.device, int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cpu":
        reuse_freed_memory()
    world = World(device)
    try:
        if world.size > 1 and config.out is None:
            raise TrainConfigError("under torchrun pass --out, so that every process agrees on the run directory")
        data = open_training_images(config)
        if config.resume is not None:
            check_same_images(run_dir, data)
        else:
            world.on_main(lambda: prepare_run_dir(run_dir, config.overwrite))
        trainer = Trainer(config, run_dir, data, world, device)
        if config.resume is not None:
            world.on_main(lambda: remove_stale_temp_files(run_dir))
            trainer.restore()
        if world.main:
            write_files_list(run_dir, data.collection)
            write_run_config(trainer)
        _run_loop(trainer, on_step, started)
        if world.main:
            finish_run(trainer, time.perf_counter() - started)
        # The others wait while the main process writes the last files, so all destroy the group
        # together, as destroy_process_group expects; after a failure torchrun stops them instead.
        world.wait_for_all()
    finally:
        world.close()
    return run_dir


def _run_loop(trainer: Trainer, on_step: Callable[[TrainProgress], None] | None, started: float) -> None:
    """Every step from the trainer's position to the end of the run: loads accumulate, the
    step's last load applies the update, an epoch's last step writes the epoch's files."""
    config = trainer.config
    workers = default_workers() if config.workers is None else config.workers
    trainer.model.train()
    trainer.optimizer.zero_grad(set_to_none=False)
    sums = torch.zeros(len(trainer.names) + 2, dtype=torch.float64)  # components, total, count
    epoch_start = time.perf_counter() - trainer.partial.get("seconds", 0.0)
    try:
        for load in loader(trainer.stream(), workers):
            trainer.accumulate(load, sums)
            if not load.last:
                continue
            lr = _step_learning_rate(trainer, load)
            means = _end_step(trainer, load, sums, lr, epoch_start)
            done = trainer.step == trainer.steps_per_epoch
            if done:
                _end_epoch(trainer, means, lr)
                epoch_start = time.perf_counter()
            if on_step is not None and trainer.world.main:
                on_step(TrainProgress(trainer.epoch + (0 if done else 1), config.epochs, load.step + 1,
                                      trainer.steps_per_epoch, means, lr, time.perf_counter() - started, done,
                                      trainer.run_dir))  # fmt: skip
    except KeyboardInterrupt:
        _save_or_stop(trainer)
        raise


def _step_learning_rate(trainer: Trainer, load: Load) -> float:
    """The learning rate of the step ``load`` belongs to."""
    config, steps = trainer.config, trainer.steps_per_epoch
    return learning_rate(config, load.epoch * steps + load.step, config.epochs * steps, config.warmup * steps)


def _end_step(trainer: Trainer, load: Load, sums: torch.Tensor, lr: float, epoch_start: float) -> dict[str, float]:
    """Apply the step's update, add its sums to the epoch's (then zero them) and return the
    epoch's running means."""
    for k, v in trainer.finish_step(sums, load.windows, lr).items():
        trainer.partial[k] = trainer.partial.get(k, 0.0) + v
    sums.zero_()
    trainer.step = load.step + 1
    trainer.partial["seconds"] = time.perf_counter() - epoch_start
    count = max(trainer.partial["count"], 1.0)
    return {k: trainer.partial[k] / count for k in [*trainer.names, "total"]}


def _end_epoch(trainer: Trainer, means: dict[str, float], lr: float) -> None:
    """Log the finished epoch, write its files on the main process, checkpoint when due."""
    config = trainer.config
    trainer.rows.append({"epoch": trainer.epoch + 1, **means, "lr": lr, "seconds": round(trainer.partial["seconds"], 4)})
    trainer.epoch, trainer.step, trainer.partial = trainer.epoch + 1, 0, {}
    _share_late_skipped(trainer)
    if trainer.world.main:
        write_metrics(trainer.run_dir, trainer.rows)
        if trainer.late_skipped:
            write_run_config(trainer)
        if trainer.epoch in reconstruction_epochs(config):
            save_reconstructions(trainer, trainer.epoch)
    if trainer.epoch % config.checkpoint_every == 0 or trainer.epoch == config.epochs:
        _save_or_stop(trainer)


def _share_late_skipped(trainer: Trainer) -> None:
    """Under ``torchrun``, every process learns the images the others failed to decode."""
    if trainer.world.size > 1:
        gathered: list[dict[str, str]] = [{} for _ in range(trainer.world.size)]
        dist.all_gather_object(gathered, trainer.late_skipped)
        for found in gathered:
            for name, reason in found.items():
                trainer.late_skipped.setdefault(name, reason)


def _save_or_stop(trainer: Trainer) -> None:
    try:
        trainer.save()
    except CheckpointError as exc:
        raise NonFiniteLossError(
            f"weights became NaN or infinite by epoch {trainer.epoch}, step {trainer.step}; "
            f"the checkpoint was not written ({exc})"
        ) from exc

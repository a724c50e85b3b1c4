"""Training a CAE on a folder of images: ``train(TrainConfig(...)) -> run directory``.

Three presets (their settings: :data:`featkit.choices.PRESETS`), every field overridable:

- ``paper`` (section 4): SGD, learning rate 0.02, momentum 0.5, full batch of whole images,
  2000 epochs; with ``pl+sfl`` the SFL weights are the paper's 100/10/10.
- ``fast`` (default): Adam (learning rate 6e-3, cosine decay) on a full batch of whole
  images, 100 epochs: the paper's effect in minutes (PL alone stays blurry), not the paper
  preset's final quality (``bench/paper_preset.py`` measures both side by side).
- ``quality``: ``fast`` with batches of 4 whole images for 200 epochs: better models with
  either loss, below the paper preset's errors in a twentieth of its time.

An epoch is a list of steps drawn from one random generator (:func:`featkit.data.epoch_plan`);
a step's windows are batched by size and their gradients accumulated with weights
``n_batch / n_step``, so a step over images of many sizes is exactly one mean over images.
Under ``torchrun`` each process takes every ``world_size``-th window of each step and the
gradients are summed with one ``all_reduce``: the update is the same as one process's.

A run directory holds ``config.json``, ``model.safetensors``, ``metrics.csv``,
``checkpoint.safetensors`` (+ ``checkpoint.prev.safetensors``), ``summary.json``,
``curves.png``, ``reconstructions/`` and ``report.html``. The library never prints: progress
goes to the ``on_step`` callback.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from featkit.allocator import reuse_freed_memory
from featkit.checkpoint import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    load_checkpoint,
    remove_stale_temp_files,
    save_checkpoint,
    save_model,
)
from featkit.choices import PRESETS
from featkit.data import ImageRecord, epoch_plan, find_images, gather_crops, load_images, sample_images
from featkit.devices import network_input, resolve_device
from featkit.encoders import AutoEncoder, create_encoder
from featkit.errors import CheckpointError, FeatkitError, ImageError, NonFiniteLossError
from featkit.io import ensure_new, read_json, write_json
from featkit.losses import LOSSES, PAPER_SCALES, create_loss
from featkit.losses.frequency import band_name

__all__ = [
    "PRESETS",
    "PROBE_COMPONENTS",
    "RESUMABLE_SETTINGS",
    "TrainConfig",
    "TrainConfigError",
    "TrainProgress",
    "evaluate_images",
    "stored_config",
    "train",
]

#: Components logged every epoch whatever the loss: PL and the paper's SFL bands, unweighted.
PROBE_COMPONENTS = ("pl", *(band_name(s) for s in PAPER_SCALES))

_OPTIMIZERS = ("sgd", "adam", "adamw")
_SCHEDULES = ("constant", "cosine")
#: Settings a resumed run may change without breaking exact continuation.
RESUMABLE_SETTINGS = ("epochs", "device", "amp")
#: Settings added after runs were first written, with the value those runs trained with.
_LEGACY_SETTINGS: dict[str, Any] = {"warmup": 0}


class TrainConfigError(FeatkitError, ValueError):
    """A training setting that is out of range or inconsistent."""


@dataclass
class TrainConfig:
    """Every training setting. ``None`` means "the preset's value".

    Attributes:
        data: image folder (recursive) or file; ``None`` for the sample photos.
        out: run directory to create; ``None`` for a new one under ``runs/``.
        encoder: registered encoder name (``featkit encoders``).
        encoder_args: keyword arguments of the encoder factory.
        loss: loss spec, e.g. ``"pl+sfl"`` (eq. 7) or ``"pl"``.
        loss_options: options of :func:`featkit.create_loss`.
        preset: ``"fast"`` or ``"paper"``.
        epochs: passes over the images.
        optimizer: ``"sgd"``, ``"adam"`` or ``"adamw"``.
        lr: peak learning rate.
        momentum: SGD momentum, or Adam's beta1.
        weight_decay: decoupled for AdamW, L2 for the others.
        schedule: ``"constant"`` or ``"cosine"`` (decay to 0 over the run, per step).
        warmup: epochs over which the learning rate first rises linearly from ``lr / steps``
            to ``lr``, before the schedule starts.
        batch_size: windows per step; 0 for full batch.
        crop: side of random square windows; 0 trains on whole images.
        crops_per_image: windows per image per epoch when cropping.
        max_side: downscale images so the longer side is at most this; ``None`` keeps them.
        strict: fail before training when any file cannot be used, instead of skipping it.
        seed: seeds the initial weights and the data order.
        device: ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda:0"``, ...
        amp: bfloat16 autocast for the network on CUDA; losses stay float32.
        checkpoint_every: epochs between checkpoints (the last epoch is always saved).
        recon_epochs: epochs at which to save reconstructions; ``None`` for 5%, 25%, 50%,
            75% and 100% of the run (the paper's 100/500/1000/1500/2000 of 2000).
        recon_images: how many images the reconstruction figures show.
        overwrite: replace an existing run directory (only one that featkit wrote).
        resume: a run directory to continue; only ``epochs``, ``device`` and ``amp`` may
            change, everything else comes from its ``config.json``.
    """

    data: str | None = None
    out: str | None = None
    encoder: str = "paper-cae"
    encoder_args: dict[str, Any] = field(default_factory=dict)
    loss: str = "pl+sfl"
    loss_options: dict[str, Any] = field(default_factory=dict)
    preset: str = "fast"
    epochs: int | None = None
    optimizer: str | None = None
    lr: float | None = None
    momentum: float | None = None
    weight_decay: float | None = None
    schedule: str | None = None
    warmup: int | None = None
    batch_size: int | None = None
    crop: int | None = None
    crops_per_image: int | None = None
    max_side: int | None = None
    strict: bool = False
    seed: int = 0
    device: str = "auto"
    amp: bool = False
    checkpoint_every: int = 1
    recon_epochs: list[int] | None = None
    recon_images: int = 4
    overwrite: bool = False
    resume: str | None = None

    def resolved(self) -> TrainConfig:
        """A copy with the preset's values filled in and every setting checked.

        Raises:
            TrainConfigError: naming the setting, its value and what is allowed.
        """
        if self.preset not in PRESETS:
            raise TrainConfigError(f"unknown preset '{self.preset}'. Available presets: {', '.join(PRESETS)}")
        filled = {k: v for k, v in PRESETS[self.preset].items() if getattr(self, k) is None}
        config = dataclasses.replace(self, **filled)
        _check(config.optimizer in _OPTIMIZERS, f"optimizer must be one of {_OPTIMIZERS}, got '{config.optimizer}'")
        _check(config.schedule in _SCHEDULES, f"schedule must be one of {_SCHEDULES}, got '{config.schedule}'")
        _check(config.epochs >= 1, f"epochs must be >= 1, got {config.epochs}")
        _check(0 <= config.warmup < config.epochs, f"warmup must be in [0, epochs), got {config.warmup}")
        _check(config.lr > 0 and math.isfinite(config.lr), f"lr must be a positive number, got {config.lr}")
        _check(0 <= config.momentum < 1, f"momentum must be in [0, 1), got {config.momentum}")
        _check(config.weight_decay >= 0, f"weight_decay must be >= 0, got {config.weight_decay}")
        _check(config.batch_size >= 0, f"batch_size must be >= 0 (0 = full batch), got {config.batch_size}")
        _check(config.crop >= 0, f"crop must be >= 0 (0 = whole images), got {config.crop}")
        _check(config.crops_per_image >= 1, f"crops_per_image must be >= 1, got {config.crops_per_image}")
        _check(config.max_side is None or config.max_side >= 8, f"max_side must be >= 8, got {config.max_side}")
        _check(config.checkpoint_every >= 1, f"checkpoint_every must be >= 1, got {config.checkpoint_every}")
        _check(config.recon_images >= 0, f"recon_images must be >= 0, got {config.recon_images}")
        return config

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings (``resume`` and ``overwrite`` are actions, not settings)."""
        d = dataclasses.asdict(self)
        for transient in ("resume", "overwrite"):
            d.pop(transient)
        return d


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise TrainConfigError(message)


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


# -- set-up -------------------------------------------------------------------------------


def _default_run_dir(config: TrainConfig) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    slug = re.sub(r"[^A-Za-z0-9.+-]+", "_", f"{config.encoder}-{config.loss}")
    base = Path("runs") / f"{stamp}-{slug}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def _prepare_run_dir(path: Path, overwrite: bool) -> None:
    if path.exists() and overwrite:
        if any(path.iterdir()) and not (path / CONFIG_FILE).is_file():
            raise FeatkitError(f"{path} exists and is not a featkit run directory; refusing to replace it")
        shutil.rmtree(path)
    ensure_new(path, hint="pass --overwrite to replace it, --resume to continue it,")
    path.mkdir(parents=True)


def _load_data(config: TrainConfig) -> tuple[list[ImageRecord], dict[str, Any]]:
    folder = Path(config.data) if config.data is not None else sample_images()
    records, skipped = load_images(find_images(folder), max_side=config.max_side)
    if skipped and config.strict:
        listed = "; ".join(f"{p}: {why}" for p, why in skipped)
        raise ImageError(f"--strict: {len(skipped)} file(s) under {folder} cannot be used: {listed}")
    if not records:
        raise ImageError(f"no usable images under {folder} ({len(skipped)} skipped)")
    heights = [r.image.shape[-2] for r in records]
    widths = [r.image.shape[-1] for r in records]
    summary = {
        "folder": str(folder),
        "sample_photos": config.data is None,
        "images": len(records),
        "files": [str(r.path) for r in records],
        "height": [min(heights), max(heights)],
        "width": [min(widths), max(widths)],
        "pixels": int(sum(h * w for h, w in zip(heights, widths))),
        "max_side": config.max_side,
        "skipped": [{"path": str(p), "reason": why} for p, why in skipped],
    }
    return records, summary


def _make_optimizer(config: TrainConfig, params) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=config.lr, betas=(config.momentum, 0.999), weight_decay=config.weight_decay)


def _learning_rate(config: TrainConfig, step: int, total: int, warmup: int) -> float:
    """Learning rate of global step ``step`` (0-based) out of ``total``, the first ``warmup``
    of them rising linearly: a pure function of the position, so a resumed run needs no
    scheduler state."""
    if step < warmup:
        return config.lr * (step + 1) / warmup
    if config.schedule == "constant":
        return config.lr
    return 0.5 * config.lr * (1.0 + math.cos(math.pi * (step - warmup) / (total - warmup)))


def _recon_epochs(config: TrainConfig) -> list[int]:
    if config.recon_epochs is not None:
        return sorted({e for e in config.recon_epochs if 1 <= e <= config.epochs})
    return sorted({max(1, round(config.epochs * f)) for f in (0.05, 0.25, 0.5, 0.75)} | {config.epochs})


# -- the loop -----------------------------------------------------------------------------


class _World:
    """This process's place in a ``torchrun`` job (a single process is a world of one)."""

    def __init__(self, device: torch.device) -> None:
        self.size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.owns_group = False
        if self.size > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
            self.owns_group = True

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.size > 1:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def on_main(self, action: Callable[[], None]) -> None:
        """Run ``action`` on the main process only; every process raises if it failed."""
        error = None
        if self.main:
            try:
                action()
            except FeatkitError as exc:
                error = exc
        failed = self.sum_(torch.tensor([0.0 if error is None else 1.0]))
        if error is not None:
            raise error
        if failed.item():
            raise FeatkitError("the main process could not set up the run directory; see its error")

    def close(self) -> None:
        if self.owns_group:
            dist.destroy_process_group()


class _Trainer:
    """The state of one run: model, optimizer, data, position; steps and checkpoints."""

    def __init__(self, config: TrainConfig, run_dir: Path, records: list[ImageRecord], world: _World, device):
        self.config, self.run_dir, self.world, self.device = config, run_dir, world, device
        self.images = [r.image for r in records]
        torch.manual_seed(config.seed)
        self.model: AutoEncoder = create_encoder(config.encoder, **config.encoder_args).to(device)
        self.loss = create_loss(config.loss, **config.loss_options).to(device)
        self.probe = create_loss("pl+sfl").to(device)
        self.names = list(PROBE_COMPONENTS) + [n for n in self.loss.weights if n not in PROBE_COMPONENTS]
        self.optimizer = _make_optimizer(config, self.model.parameters())
        self.data_rng = torch.Generator().manual_seed(config.seed)
        self.epoch, self.step = 0, 0  # completed epochs; completed steps of the current epoch
        self.epoch_rng = self.data_rng.get_state()
        self.partial: dict[str, float] = {}
        self.rows: list[dict[str, Any]] = []
        self.steps_per_epoch = len(self._plan(torch.Generator().manual_seed(0)))

    # -- state ------------------------------------------------------------------------
    def _plan(self, generator: torch.Generator):
        c = self.config
        sizes = [tuple(im.shape[-2:]) for im in self.images]
        return epoch_plan(sizes, batch_size=c.batch_size, crop=c.crop, crops_per_image=c.crops_per_image, generator=generator)

    def save(self) -> None:
        if not self.world.main:
            return
        rng = {"torch": torch.get_rng_state(), "epoch": self.epoch_rng}
        meta = {"epoch": self.epoch, "step": self.step, "partial": self.partial, "rows": self.rows}
        save_checkpoint(self.run_dir, model=self.model, optimizer=self.optimizer, rng=rng, meta=meta)
        save_model(self.run_dir, self.model)

    def restore(self) -> None:
        state = load_checkpoint(self.run_dir)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"]["torch"])
        self.epoch_rng = state["rng"]["epoch"]
        meta = state["meta"]
        self.epoch, self.step = int(meta["epoch"]), int(meta["step"])
        self.partial, self.rows = dict(meta["partial"]), list(meta["rows"])

    # -- one step ---------------------------------------------------------------------
    def _components(self, batch: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.config.amp and self.device.type == "cuda")
        with autocast:
            output = self.model(batch)
        output = output.float()
        total, parts = self.loss.evaluate(output, batch)
        missing = [n for n in PROBE_COMPONENTS if n not in parts]
        if missing:
            with torch.no_grad():
                probed = self.probe.components(output.detach(), batch)
            parts = {**parts, **{n: probed[n] for n in missing}}
        return total, parts

    def run_step(self, crops, lr: float) -> dict[str, float]:
        """One optimisation step over ``crops``; returns the step's summed components."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=False)
        mine = crops[self.world.rank :: self.world.size]
        sums = torch.zeros(len(self.names) + 2, dtype=torch.float64)  # components, total, count
        for batch in gather_crops(self.images, mine) if mine else []:
            batch = network_input(batch, self.device)
            total, parts = self._components(batch)
            (total * (len(batch) / len(crops))).backward()
            values = torch.stack([parts[n].detach() for n in self.names] + [total.detach()]).double().cpu()
            sums[:-1] += values * len(batch)
            sums[-1] += len(batch)
        self.world.sum_(sums)
        if not bool(torch.isfinite(sums).all()):
            name, value = next((n, v) for n, v in zip([*self.names, "total"], sums.tolist()) if not math.isfinite(v))
            overall = self.epoch * self.steps_per_epoch + self.step + 1
            origin = f" (from {LOSSES.get(name).source})" if name in LOSSES.names() else ""
            raise NonFiniteLossError(
                f"loss term '{name}'{origin} became {value} at epoch {self.epoch + 1}, step {self.step + 1} "
                f"(step {overall} overall); the update was "
                f"not applied and the last good checkpoint is {self.run_dir / CHECKPOINT_FILE} (try a lower --lr)"
            )
        if self.world.size > 1:  # one all_reduce of every gradient, flattened
            params = [p for p in self.model.parameters() if p.requires_grad]
            flat = self.world.sum_(torch.cat([torch.zeros_like(p).flatten() if p.grad is None else p.grad.flatten()
                                              for p in params]))  # fmt: skip
            for p, g in zip(params, flat.split([p.numel() for p in params])):
                p.grad = g.view_as(p).clone()
        self.optimizer.step()
        return dict(zip([*self.names, "total", "count"], sums.tolist()))


def evaluate_images(
    model: AutoEncoder, images: Sequence[torch.Tensor], *, device: str | torch.device = "cpu"
) -> dict[str, float]:
    """PL and the paper's SFL bands (unweighted) of ``model`` on whole images.

    Args:
        model: an autoencoder.
        images: :math:`(3, H_i, W_i)` tensors in [-1, 1], any sizes.
        device: where to run.

    Returns:
        ``{"pl": ..., "sfl/0.8": ..., "sfl/1.6": ..., "sfl/3.2": ...}``, means over images.
    """
    probe = create_loss("pl+sfl").to(device)
    crops = [c for step in epoch_plan([tuple(im.shape[-2:]) for im in images], batch_size=0, crop=0,
                                      generator=torch.Generator().manual_seed(0)) for c in step]  # fmt: skip
    sums = dict.fromkeys(PROBE_COMPONENTS, 0.0)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for batch in gather_crops(images, sorted(crops, key=lambda c: c.index)):
            batch = network_input(batch, device)
            parts = probe.components(model(batch).float(), batch)
            for name in PROBE_COMPONENTS:
                sums[name] += float(parts[name]) * len(batch)
    model.train(was_training)
    return {k: v / len(images) for k, v in sums.items()}


def train(config: TrainConfig, on_step: Callable[[TrainProgress], None] | None = None) -> Path:
    """Train an autoencoder and write its run directory.

    On the CPU this keeps freed memory in the process for the next step's activations
    (:func:`featkit.allocator.reuse_freed_memory`, process-wide, glibc only).

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
        CheckpointError: ``resume`` names a run without a readable checkpoint.
        KeyboardInterrupt: after saving a checkpoint that ``resume`` continues exactly.
    """
    started = time.perf_counter()
    if config.resume is not None:
        config, run_dir = _resumed_config(config), Path(config.resume)
    else:
        config = config.resolved()
        run_dir = Path(config.out) if config.out is not None else _default_run_dir(config)
    device = resolve_device(config.device, int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cpu":
        reuse_freed_memory()
    world = _World(device)
    try:
        if world.size > 1 and config.out is None:
            raise TrainConfigError("under torchrun pass --out, so that every process agrees on the run directory")
        records, data_summary = _load_data(config)
        if config.resume is not None:
            _check_same_images(run_dir, data_summary["files"])
        else:
            world.on_main(lambda: _prepare_run_dir(run_dir, config.overwrite))
        trainer = _Trainer(config, run_dir, records, world, device)
        if config.resume is not None:
            world.on_main(lambda: remove_stale_temp_files(run_dir))
            trainer.restore()
        if world.main:
            write_json(run_dir / CONFIG_FILE, _run_config(config, trainer, data_summary))
        _loop(trainer, on_step, started)
        if world.main:
            _finish(trainer, time.perf_counter() - started)
    finally:
        world.close()
    return run_dir


def stored_config(run_dir: str | os.PathLike) -> TrainConfig:
    """The settings a run directory was trained with, as written in its ``config.json``.

    Settings added to featkit after a run was written take the value such runs used.

    Raises:
        CheckpointError: no ``config.json``, or one featkit cannot read.
    """
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"cannot resume {run_dir}: not a featkit run directory (no {CONFIG_FILE})")
    try:
        return TrainConfig(**{**_LEGACY_SETTINGS, **read_json(path)["train"]})
    except (ValueError, KeyError, TypeError) as exc:  # JSONDecodeError is a ValueError
        raise CheckpointError(f"cannot resume {run_dir}: unreadable {path} ({exc!r})") from exc


def _resumed_config(requested: TrainConfig) -> TrainConfig:
    run_dir = Path(requested.resume)
    stored = stored_config(run_dir)
    defaults = TrainConfig()
    changes = {k: getattr(requested, k) for k in RESUMABLE_SETTINGS if getattr(requested, k) != getattr(defaults, k)}
    return dataclasses.replace(stored, **changes, resume=str(run_dir), out=str(run_dir)).resolved()


def _check_same_images(run_dir: Path, files: list[str]) -> None:
    before = read_json(run_dir / CONFIG_FILE)["data"]["files"]
    if before != files:
        added, removed = sorted(set(files) - set(before)), sorted(set(before) - set(files))
        raise CheckpointError(
            f"cannot resume {run_dir} exactly: its images changed since it started "
            f"({len(added)} added, {len(removed)} removed, e.g. {(added + removed)[:3]})"
        )


def _run_config(config: TrainConfig, trainer: _Trainer, data_summary: dict[str, Any]) -> dict[str, Any]:
    from featkit import __version__

    return {
        "featkit": __version__,
        "encoder": trainer.model.config,
        "feature_info": [info.as_dict() for info in trainer.model.feature_info],
        "loss": {"spec": config.loss, "options": config.loss_options, "weights": trainer.loss.weights},
        "preset": config.preset,
        "train": config.to_dict(),
        "steps_per_epoch": trainer.steps_per_epoch,
        "world_size": trainer.world.size,
        "device": str(trainer.device),
        "amp": config.amp and trainer.device.type == "cuda",  # bfloat16 autocast is CUDA-only
        "data": data_summary,
    }


def _loop(trainer: _Trainer, on_step, started: float) -> None:
    config, world = trainer.config, trainer.world
    recon_at = set(_recon_epochs(config))
    total_steps = config.epochs * trainer.steps_per_epoch
    warmup_steps = config.warmup * trainer.steps_per_epoch
    trainer.model.train()
    try:
        while trainer.epoch < config.epochs:
            trainer.data_rng.set_state(trainer.epoch_rng)
            plan = trainer._plan(trainer.data_rng)
            epoch_start = time.perf_counter() - trainer.partial.get("seconds", 0.0)
            for index in range(trainer.step, len(plan)):
                lr = _learning_rate(config, trainer.epoch * len(plan) + index, total_steps, warmup_steps)
                sums = trainer.run_step(plan[index], lr)
                for k, v in sums.items():
                    trainer.partial[k] = trainer.partial.get(k, 0.0) + v
                trainer.step = index + 1
                done = trainer.step == len(plan)
                trainer.partial["seconds"] = time.perf_counter() - epoch_start
                means = {k: trainer.partial[k] / trainer.partial["count"] for k in [*trainer.names, "total"]}
                if done:
                    trainer.rows.append({"epoch": trainer.epoch + 1, **means, "lr": lr,
                                         "seconds": round(trainer.partial["seconds"], 4)})  # fmt: skip
                    trainer.epoch, trainer.step, trainer.partial = trainer.epoch + 1, 0, {}
                    trainer.epoch_rng = trainer.data_rng.get_state()
                    if world.main:
                        _write_metrics(trainer.run_dir, trainer.rows)
                        if trainer.epoch in recon_at:
                            _save_reconstructions(trainer, trainer.epoch)
                    if trainer.epoch % config.checkpoint_every == 0 or trainer.epoch == config.epochs:
                        _save_or_stop(trainer)
                if on_step is not None and world.main:
                    on_step(TrainProgress(trainer.epoch + (0 if done else 1), config.epochs, index + 1, len(plan),
                                          means, lr, time.perf_counter() - started, done, trainer.run_dir))  # fmt: skip
    except KeyboardInterrupt:
        _save_or_stop(trainer)
        raise


def _save_or_stop(trainer: _Trainer) -> None:
    try:
        trainer.save()
    except CheckpointError as exc:
        raise NonFiniteLossError(
            f"weights became NaN or infinite by epoch {trainer.epoch}, step {trainer.step}; "
            f"the checkpoint was not written ({exc})"
        ) from exc


def _write_metrics(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    from featkit.io import atomic_path

    with atomic_path(run_dir / "metrics.csv") as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _save_reconstructions(trainer: _Trainer, epoch: int) -> None:
    from featkit.plots import plot_reconstructions

    count = min(trainer.config.recon_images, len(trainer.images))
    if count == 0:
        return
    originals = trainer.images[:count]
    was_training = trainer.model.training
    trainer.model.eval()
    with torch.no_grad():
        recons = [trainer.model(im[None].to(trainer.device)).float()[0].cpu() for im in originals]
    trainer.model.train(was_training)
    plot_reconstructions(originals, recons, trainer.run_dir / "reconstructions" / f"epoch_{epoch:04d}.png",
                         title=f"epoch {epoch}: original | reconstruction | close-ups")  # fmt: skip


def _finish(trainer: _Trainer, seconds: float) -> None:
    from featkit.plots import plot_curves
    from featkit.report import write_report

    final = evaluate_images(trainer.model, trainer.images, device=trainer.device)
    summary = {"epochs": trainer.epoch, "seconds": round(seconds, 3), "final": final}
    write_json(trainer.run_dir / "summary.json", summary)
    plot_curves(trainer.rows, trainer.run_dir / "curves.png", title=f"{trainer.config.encoder}, {trainer.config.loss}")
    write_report(trainer.run_dir)

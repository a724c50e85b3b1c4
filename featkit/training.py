"""Training a CAE on a folder of images: ``train(TrainConfig(...)) -> run directory``.

Four presets (their settings: :data:`featkit.choices.PRESETS`), every field overridable:

- ``standard`` (default): Adam (learning rate 6e-3, cosine decay) on mini-batches of random
  crops, with epochs of a fixed number of windows, so a run costs the same on 20 photos and
  on a million and memory holds one step's crops.
- ``paper`` (section 4): SGD, learning rate 0.02, momentum 0.5, full batch of whole images,
  2000 epochs; with ``pl+sfl`` the SFL weights are the paper's 100/10/10.
- ``fast``: Adam on a full batch of whole images, 100 epochs: the paper's effect in minutes
  (PL alone stays blurry), not the paper preset's final quality.
- ``quality``: ``fast`` with batches of 4 whole images for 200 epochs.

Images are never all in memory: the run lists them and reads their headers, then each step
decodes what it needs (:mod:`featkit.pipeline`). An epoch is a list of steps, a pure function
of the seed and the epoch (:func:`featkit.pipeline.plan_epoch`); a step is cut into loads of
bounded pixels whose gradients accumulate with weights ``n_batch / n_step``, so a full-batch
step over any number of images of any sizes is exactly one mean over images. Under
``torchrun`` each process takes its share of each step's windows (for tar shards, those of
the shards it owns) and the gradients are summed with one ``all_reduce``: the update is the
same as one process's.

A run directory holds ``config.json`` (with ``files.txt``, the list of images, beside it), ``model.safetensors``, ``metrics.csv``,
``checkpoint.safetensors`` (+ ``checkpoint.prev.safetensors``), ``summary.json``,
``whitening.safetensors`` (the descriptor whitening fitted on the run's images at the end),
``curves.png``, ``reconstructions/`` and ``report.html``. The library never prints: progress
goes to the ``on_step`` callback.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
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

import numpy as np
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
from featkit.choices import DEFAULT_PRESET, PRESETS
from featkit.contrast import WarpContrast
from featkit.data import decode_image, size_buckets
from featkit.descriptors import EMPTY_NORM, WHITENING_FILE, describe, fit_whitening
from featkit.devices import network_input, resolve_device
from featkit.encoders import AutoEncoder, create_encoder
from featkit.errors import CheckpointError, FeatkitError, ImageError, NonFiniteLossError
from featkit.io import atomic_path, ensure_new, read_json, write_json
from featkit.losses import LOSSES, PAPER_SCALES, create_loss
from featkit.losses.frequency import band_name
from featkit.pipeline import Collection, Load, StepStream, default_workers, loader, open_collection, plan_epoch, scan_sizes

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
RESUMABLE_SETTINGS = ("epochs", "device", "amp", "workers")
#: Settings added after runs were first written, with the value those runs trained with.
_LEGACY_SETTINGS: dict[str, Any] = {"warmup": 0, "epoch_windows": 0, "workers": None, "contrast": 0.0}
#: The file beside ``config.json`` listing the run's images, one name per line.
FILES_LIST = "files.txt"
#: The metrics column of the contrast term (unweighted, like the loss components).
CONTRAST_COMPONENT = "contrast"
#: Images the end-of-run evaluation (``summary.json``) decodes at most, evenly spread.
EVAL_IMAGES = 32
#: Longer side of the images in the reconstruction figures (whatever the training size).
FIGURE_SIDE = 512
#: The descriptor whitening a finished run fits (:mod:`featkit.descriptors`): on up to this
#: many of its images, evenly spread, read at most this large (``featkit match``'s default
#: side), from at most this many descriptors in all.
WHITENING_IMAGES, WHITENING_SIDE, WHITENING_DESCRIPTORS = 64, 512, 60_000


class TrainConfigError(FeatkitError, ValueError):
    """A training setting that is out of range or inconsistent."""


@dataclass
class TrainConfig:
    """Every training setting. ``None`` means "the preset's value".

    Attributes:
        data: image folder (recursive), image file, text file listing images, or WebDataset
            tar shards (``shards/train-{000000..000099}.tar``); ``None`` for the sample photos.
        out: run directory to create; ``None`` for a new one under ``runs/``.
        encoder: registered encoder name (``featkit encoders``).
        encoder_args: keyword arguments of the encoder factory.
        loss: loss spec, e.g. ``"pl+sfl"`` (eq. 7) or ``"pl"``.
        loss_options: options of :func:`featkit.create_loss`.
        contrast: weight of the dense warp-contrastive term added to the loss
            (:class:`featkit.contrast.WarpContrast`); 0 trains on the reconstruction loss alone.
        preset: a name of :data:`featkit.choices.PRESETS`.
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
        epoch_windows: windows per epoch; 0 makes an epoch one pass over the images. With a
            fixed number, an epoch (and so the schedule) costs the same on 20 photos and on a
            million (:func:`featkit.pipeline.plan_epoch`).
        max_side: downscale images so the longer side is at most this; ``None`` keeps them.
        strict: fail before training when any file cannot be used, instead of skipping it.
        seed: seeds the initial weights and the data order.
        device: ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda:0"``, ...
        amp: bfloat16 autocast for the network on CUDA; losses stay float32.
        workers: DataLoader processes decoding images; ``None``: :func:`featkit.pipeline.default_workers`.
        checkpoint_every: epochs between checkpoints (the last epoch is always saved).
        recon_epochs: epochs at which to save reconstructions; ``None`` for 5%, 25%, 50%,
            75% and 100% of the run (the paper's 100/500/1000/1500/2000 of 2000).
        recon_images: how many images the reconstruction figures show.
        overwrite: replace an existing run directory (only one that featkit wrote).
        resume: a run directory to continue; only ``epochs``, ``device``, ``amp`` and
            ``workers`` may change, everything else comes from its ``config.json``.
    """

    data: str | None = None
    out: str | None = None
    encoder: str = "paper-cae"
    encoder_args: dict[str, Any] = field(default_factory=dict)
    loss: str = "pl+sfl"
    loss_options: dict[str, Any] = field(default_factory=dict)
    contrast: float | None = None
    preset: str = DEFAULT_PRESET
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
    epoch_windows: int | None = None
    max_side: int | None = None
    strict: bool = False
    seed: int = 0
    device: str = "auto"
    amp: bool = False
    workers: int | None = None
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
        _check(config.contrast >= 0 and math.isfinite(config.contrast), f"contrast must be >= 0, got {config.contrast}")
        _check(config.epochs >= 1, f"epochs must be >= 1, got {config.epochs}")
        _check(0 <= config.warmup < config.epochs, f"warmup must be in [0, epochs), got {config.warmup}")
        _check(config.lr > 0 and math.isfinite(config.lr), f"lr must be a positive number, got {config.lr}")
        _check(0 <= config.momentum < 1, f"momentum must be in [0, 1), got {config.momentum}")
        _check(config.weight_decay >= 0, f"weight_decay must be >= 0, got {config.weight_decay}")
        _check(config.batch_size >= 0, f"batch_size must be >= 0 (0 = full batch), got {config.batch_size}")
        _check(config.crop >= 0, f"crop must be >= 0 (0 = whole images), got {config.crop}")
        _check(config.crops_per_image >= 1, f"crops_per_image must be >= 1, got {config.crops_per_image}")
        _check(config.epoch_windows >= 0, f"epoch_windows must be >= 0 (0 = one pass), got {config.epoch_windows}")
        _check(config.workers is None or config.workers >= 0, f"workers must be >= 0, got {config.workers}")
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


@dataclass
class _Data:
    """The images a run trains on: the usable part of its collection and their sizes."""

    collection: Collection
    sizes: list[tuple[int, int]]
    summary: dict[str, Any]


def _open_data(config: TrainConfig) -> _Data:
    """List the run's images and read their headers (no pixels); ``--strict`` fails here."""
    collection = open_collection(config.data)
    usable, sizes, skipped = scan_sizes(collection, max_side=config.max_side, verify=config.strict)
    if skipped and config.strict:
        listed = "; ".join(f"{name}: {why}" for name, why in skipped)
        raise ImageError(f"--strict: {len(skipped)} file(s) in {collection.source} cannot be used: {listed}")
    if not usable:
        raise ImageError(f"no usable images in {collection.source} ({len(skipped)} skipped)")
    collection = collection.subset(usable)
    heights, widths = [h for h, _ in sizes], [w for _, w in sizes]
    summary = {
        "folder": collection.source,
        "kind": collection.kind,
        "sample_photos": config.data is None,
        "images": len(collection),
        "pixels": int(sum(h * w for h, w in sizes)),
        "height": [min(heights), max(heights)],
        "width": [min(widths), max(widths)],
        "digest": collection.digest(),
        "files": FILES_LIST,
        "max_side": config.max_side,
        "skipped": [{"path": name, "reason": why} for name, why in skipped],
    }
    return _Data(collection, sizes, summary)


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

    def wait_for_all(self) -> None:
        """Return once every process got here (at once in a world of one)."""
        if self.size > 1:
            dist.barrier()

    def close(self) -> None:
        if self.owns_group:
            dist.destroy_process_group()


class _Trainer:
    """The state of one run: model, optimizer, data, position; steps and checkpoints."""

    def __init__(self, config: TrainConfig, run_dir: Path, data: _Data, world: _World, device):
        self.config, self.run_dir, self.data, self.world, self.device = config, run_dir, data, world, device
        torch.manual_seed(config.seed)
        self.model: AutoEncoder = create_encoder(config.encoder, **config.encoder_args).to(device)
        self.loss = create_loss(config.loss, **config.loss_options).to(device)
        self.probe = create_loss("pl+sfl").to(device)
        self.contrast = WarpContrast() if config.contrast > 0 else None
        self.names = list(PROBE_COMPONENTS) + [n for n in self.loss.weights if n not in PROBE_COMPONENTS]
        self.names += [CONTRAST_COMPONENT] if self.contrast is not None else []
        self.batches_in_step = 0  # batches this process ran in the current step (seeds the contrast term)
        self.optimizer = _make_optimizer(config, self.model.parameters())
        self.plan = {"seed": config.seed, "batch_size": config.batch_size, "crops_per_image": config.crops_per_image,
                     "epoch_windows": config.epoch_windows}  # fmt: skip
        self.steps_per_epoch = len(plan_epoch(len(data.collection), 0, **self.plan))
        self.epoch, self.step = 0, 0  # completed epochs; completed steps of the current epoch
        self.partial: dict[str, float] = {}
        self.rows: list[dict[str, Any]] = []
        #: Images whose header read but whose pixels did not decode, found while training.
        self.late_skipped: dict[str, str] = {}

    # -- state ------------------------------------------------------------------------
    def save(self) -> None:
        if not self.world.main:
            return
        meta = {"epoch": self.epoch, "step": self.step, "partial": self.partial, "rows": self.rows,
                "late_skipped": self.late_skipped}  # fmt: skip
        save_checkpoint(self.run_dir, model=self.model, optimizer=self.optimizer, rng={"torch": torch.get_rng_state()},
                        meta=meta)  # fmt: skip
        save_model(self.run_dir, self.model)

    def restore(self) -> None:
        state = load_checkpoint(self.run_dir)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"]["torch"])
        meta = state["meta"]
        self.epoch, self.step = int(meta["epoch"]), int(meta["step"])
        self.partial, self.rows = dict(meta["partial"]), list(meta["rows"])
        self.late_skipped = dict(meta.get("late_skipped", {}))

    def stream(self) -> StepStream:
        """The loads of every step from the current position to the end of the run."""
        c = self.config
        return StepStream(self.data.collection, self.data.sizes, plan=self.plan, crop=c.crop, max_side=c.max_side,
                          start=(self.epoch, self.step), stop=c.epochs, rank=self.world.rank, world=self.world.size)  # fmt: skip

    # -- one step ---------------------------------------------------------------------
    def _components(self, batch: torch.Tensor, load: Load) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.config.amp and self.device.type == "cuda")
        with autocast:
            output = self.model(batch)
        output = output.float()
        total, parts = self.loss.evaluate(output, batch)
        if self.contrast is not None:
            with autocast:
                term = self.contrast(self.model, batch, self._contrast_generator(load))
            parts = {**parts, CONTRAST_COMPONENT: term}
            total = total + self.config.contrast * term
        missing = [n for n in PROBE_COMPONENTS if n not in parts]
        if missing:
            with torch.no_grad():
                probed = self.probe.components(output.detach(), batch)
            parts = {**parts, **{n: probed[n] for n in missing}}
        return total, parts

    def _contrast_generator(self, load: Load) -> torch.Generator:
        """The contrast term's randomness for this process's next batch: a pure function of
        the seed and the position, so a resumed run draws the same warps."""
        position = (self.config.seed, load.epoch, load.step, self.world.rank, self.batches_in_step)
        seed = int.from_bytes(hashlib.sha256(repr(position).encode()).digest()[:8], "little")
        self.batches_in_step += 1
        return torch.Generator().manual_seed(seed)

    def accumulate(self, load: Load, sums: torch.Tensor) -> None:
        """Add one load's gradient, weighted by its share of the step's planned windows, and
        its components (summed over windows) to ``sums``."""
        for name, reason in load.failed:
            self.late_skipped.setdefault(name, reason)
        for batch in load.batches:
            batch = network_input(batch, self.device)
            total, parts = self._components(batch, load)
            (total * (len(batch) / load.windows)).backward()
            values = torch.stack([parts[n].detach() for n in self.names] + [total.detach()]).double().cpu()
            sums[:-1] += values * len(batch)
            sums[-1] += len(batch)

    def finish_step(self, sums: torch.Tensor, planned: int, lr: float) -> dict[str, float]:
        """Combine every process's part of the step and update; returns the step's summed
        components and ``count``, the windows that decoded. A step whose images all failed
        to decode makes no update."""
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
        decoded = int(sums[-1])
        params = [p for p in self.model.parameters() if p.requires_grad]
        if self.world.size > 1:  # one all_reduce of every gradient, flattened
            flat = self.world.sum_(torch.cat([torch.zeros_like(p).flatten() if p.grad is None else p.grad.flatten()
                                              for p in params]))  # fmt: skip
            for p, g in zip(params, flat.split([p.numel() for p in params])):
                p.grad = g.view_as(p).clone()
        if 0 < decoded < planned:  # undecodable images: the mean is over the windows that remain
            for p in params:
                if p.grad is not None:
                    p.grad.mul_(planned / decoded)
        if decoded:
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=False)
        self.batches_in_step = 0
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
    sums = dict.fromkeys(PROBE_COMPONENTS, 0.0)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for group in size_buckets([tuple(im.shape[-2:]) for im in images], None):
            batch = network_input(torch.stack([images[i] for i in group]), device)
            parts = probe.components(model(batch).float(), batch)
            for name in PROBE_COMPONENTS:
                sums[name] += float(parts[name]) * len(batch)
    model.train(was_training)
    return {k: v / len(images) for k, v in sums.items()}


def _spread(count: int, most: int) -> list[int]:
    """At most ``most`` indices evenly spread over ``range(count)`` (all of them when few)."""
    return list(range(count)) if count <= most else [i * count // most for i in range(most)]


def _evaluate_run(trainer: _Trainer) -> dict[str, float]:
    """:func:`evaluate_images` over up to :data:`EVAL_IMAGES` of the run's images, decoded and
    run one at a time (full-size photos stay within the memory of one image's activations)."""
    refs = trainer.data.collection.refs
    chosen = [i for i in _spread(len(refs), EVAL_IMAGES) if refs[i].name not in trainer.late_skipped]
    totals = dict.fromkeys(PROBE_COMPONENTS, 0.0)
    for i in chosen:
        image = decode_image(refs[i], max_side=trainer.config.max_side)[0]
        for name, value in evaluate_images(trainer.model, [image], device=trainer.device).items():
            totals[name] += value / len(chosen)
    return totals


def _fit_run_whitening(trainer: _Trainer) -> dict[str, Any] | None:
    """Fit the descriptor whitening on up to :data:`WHITENING_IMAGES` of the run's images and
    write it to ``whitening.safetensors``; returns what it was fitted on (``None``: too few
    descriptors, nothing written)."""
    refs, model = trainer.data.collection.refs, trainer.model
    chosen = [i for i in _spread(len(refs), WHITENING_IMAGES) if refs[i].name not in trainer.late_skipped]
    side = min(WHITENING_SIDE, trainer.config.max_side or WHITENING_SIDE)
    rng = np.random.default_rng(trainer.config.seed)
    rows = []
    model.eval()
    for i in chosen:
        try:
            image = decode_image(refs[i], max_side=side)[0]
        except ImageError:
            continue
        with torch.no_grad():
            units = describe(model, network_input(image[None], trainer.device), whiten=False)[0]
        cells = units.flatten(1).T.cpu().numpy()
        cells = cells[np.linalg.norm(cells, axis=1) > EMPTY_NORM]
        most = WHITENING_DESCRIPTORS // len(chosen)
        rows.append(cells if len(cells) <= most else cells[rng.choice(len(cells), most, replace=False)])
    model.train()
    count = sum(len(r) for r in rows)
    if count < 2:
        return None
    whitening = fit_whitening(np.concatenate(rows), layer=model.default_layer, window=model.default_window)
    whitening.save(trainer.run_dir / WHITENING_FILE)
    return {"layer": whitening.layer, "window": whitening.window, "dim": whitening.dim, "descriptors": count,
            "images": len(rows), "side": side}  # fmt: skip


def train(config: TrainConfig, on_step: Callable[[TrainProgress], None] | None = None) -> Path:
    """Train an autoencoder and write its run directory.

    Images are decoded as steps need them (:mod:`featkit.pipeline`), so memory stays bounded
    whatever the collection's size. On the CPU this keeps freed memory in the process for the
    next step's activations (:func:`featkit.allocator.reuse_freed_memory`, process-wide,
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
        data = _open_data(config)
        if config.resume is not None:
            _check_same_images(run_dir, data)
        else:
            world.on_main(lambda: _prepare_run_dir(run_dir, config.overwrite))
        trainer = _Trainer(config, run_dir, data, world, device)
        if config.resume is not None:
            world.on_main(lambda: remove_stale_temp_files(run_dir))
            trainer.restore()
        if world.main:
            _write_files_list(run_dir, data.collection)
            _write_run_config(trainer)
        _loop(trainer, on_step, started)
        if world.main:
            _finish(trainer, time.perf_counter() - started)
        # The others wait while the main process writes the last files, so all destroy the group
        # together, as destroy_process_group expects; after a failure torchrun stops them instead.
        world.wait_for_all()
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


def _write_files_list(run_dir: Path, collection: Collection) -> None:
    with atomic_path(run_dir / FILES_LIST) as tmp, open(tmp, "w") as fh:
        fh.writelines(f"{ref.name}\n" for ref in collection.refs)


def _check_same_images(run_dir: Path, data: _Data) -> None:
    before = read_json(run_dir / CONFIG_FILE)["data"]
    if before.get("digest") == data.summary["digest"]:
        return
    listed = run_dir / FILES_LIST
    old = set(listed.read_text().splitlines()) if listed.is_file() else set(before.get("files", []))
    new = {ref.name for ref in data.collection.refs}
    added, removed = sorted(new - old), sorted(old - new)
    if not added and not removed:  # a run written before digests: the same images
        return
    raise CheckpointError(
        f"cannot resume {run_dir} exactly: its images changed since it started "
        f"({len(added)} added, {len(removed)} removed, e.g. {(added + removed)[:3]})"
    )


def _write_run_config(trainer: _Trainer) -> None:
    """``config.json``: the settings, the model, and the data (with every skipped image)."""
    from featkit import __version__

    config = trainer.config
    data = dict(trainer.data.summary)
    data["images"] -= len(trainer.late_skipped)
    data["skipped"] = data["skipped"] + [{"path": n, "reason": r} for n, r in trainer.late_skipped.items()]
    write_json(trainer.run_dir / CONFIG_FILE, {
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
        "data": data,
    })  # fmt: skip


def _loop(trainer: _Trainer, on_step, started: float) -> None:
    config, world = trainer.config, trainer.world
    recon_at = set(_recon_epochs(config))
    steps = trainer.steps_per_epoch
    total_steps, warmup_steps = config.epochs * steps, config.warmup * steps
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
            lr = _learning_rate(config, load.epoch * steps + load.step, total_steps, warmup_steps)
            for k, v in trainer.finish_step(sums, load.windows, lr).items():
                trainer.partial[k] = trainer.partial.get(k, 0.0) + v
            sums.zero_()
            trainer.step = load.step + 1
            done = trainer.step == steps
            trainer.partial["seconds"] = time.perf_counter() - epoch_start
            count = max(trainer.partial["count"], 1.0)
            means = {k: trainer.partial[k] / count for k in [*trainer.names, "total"]}
            if done:
                trainer.rows.append({"epoch": trainer.epoch + 1, **means, "lr": lr,
                                     "seconds": round(trainer.partial["seconds"], 4)})  # fmt: skip
                trainer.epoch, trainer.step, trainer.partial = trainer.epoch + 1, 0, {}
                epoch_start = time.perf_counter()
                _share_late_skipped(trainer)
                if world.main:
                    _write_metrics(trainer.run_dir, trainer.rows)
                    if trainer.late_skipped:
                        _write_run_config(trainer)
                    if trainer.epoch in recon_at:
                        _save_reconstructions(trainer, trainer.epoch)
                if trainer.epoch % config.checkpoint_every == 0 or trainer.epoch == config.epochs:
                    _save_or_stop(trainer)
            if on_step is not None and world.main:
                on_step(TrainProgress(trainer.epoch + (0 if done else 1), config.epochs, load.step + 1, steps,
                                      means, lr, time.perf_counter() - started, done, trainer.run_dir))  # fmt: skip
    except KeyboardInterrupt:
        _save_or_stop(trainer)
        raise


def _share_late_skipped(trainer: _Trainer) -> None:
    """Under ``torchrun``, every process learns the images the others failed to decode."""
    if trainer.world.size > 1:
        gathered: list[dict[str, str]] = [{} for _ in range(trainer.world.size)]
        dist.all_gather_object(gathered, trainer.late_skipped)
        for found in gathered:
            for name, reason in found.items():
                trainer.late_skipped.setdefault(name, reason)


def _save_or_stop(trainer: _Trainer) -> None:
    try:
        trainer.save()
    except CheckpointError as exc:
        raise NonFiniteLossError(
            f"weights became NaN or infinite by epoch {trainer.epoch}, step {trainer.step}; "
            f"the checkpoint was not written ({exc})"
        ) from exc


def _write_metrics(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    with atomic_path(run_dir / "metrics.csv") as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _save_reconstructions(trainer: _Trainer, epoch: int) -> None:
    from featkit.plots import plot_reconstructions

    refs = trainer.data.collection.refs
    side = min(FIGURE_SIDE, trainer.config.max_side or FIGURE_SIDE)
    originals = []
    for ref in refs:  # the first images that decode
        if len(originals) == trainer.config.recon_images:
            break
        if ref.name not in trainer.late_skipped:
            try:
                originals.append(decode_image(ref, max_side=side)[0])
            except ImageError:
                continue
    if not originals:
        return
    was_training = trainer.model.training
    trainer.model.eval()
    with torch.no_grad():
        recons = [trainer.model(network_input(im[None], trainer.device)).float()[0].cpu() for im in originals]
    trainer.model.train(was_training)
    plot_reconstructions(originals, recons, trainer.run_dir / "reconstructions" / f"epoch_{epoch:04d}.png",
                         title=f"epoch {epoch}: original | reconstruction | close-ups")  # fmt: skip


def _finish(trainer: _Trainer, seconds: float) -> None:
    from featkit.plots import plot_curves
    from featkit.report import write_report

    final = _evaluate_run(trainer)
    summary = {"epochs": trainer.epoch, "seconds": round(seconds, 3), "final": final,
               "whitening": _fit_run_whitening(trainer)}  # fmt: skip
    write_json(trainer.run_dir / "summary.json", summary)
    plot_curves(trainer.rows, trainer.run_dir / "curves.png", title=f"{trainer.config.encoder}, {trainer.config.loss}")
    write_report(trainer.run_dir)

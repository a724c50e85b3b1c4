"""Training settings: :class:`TrainConfig` with the presets filled in and checked, and the
settings a run directory was trained with (what ``resume`` continues)."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from featkit.choices import DEFAULT_PRESET, PRESETS
from featkit.errors import CheckpointError, FeatkitError
from featkit.io import read_json
from featkit.runs.models import CONFIG_FILE, pretrained_models, run_directory

__all__ = ["RESUMABLE_SETTINGS", "TrainConfig", "TrainConfigError", "stored_config"]


_OPTIMIZERS = ("sgd", "adam", "adamw")
_SCHEDULES = ("constant", "cosine")
#: Settings a resumed run may change without breaking exact continuation.
RESUMABLE_SETTINGS = ("epochs", "device", "amp", "workers")
#: Settings added after runs were first written, with the value those runs trained with.
_LEGACY_SETTINGS: dict[str, Any] = {"warmup": 0, "epoch_windows": 0, "workers": None, "contrast": 0.0, "init": None,
                                   "contrast_perspective": 0.0}  # fmt: skip


class TrainConfigError(FeatkitError, ValueError):
    """A training setting that is out of range or inconsistent."""


@dataclass
class TrainConfig:
    """Every training setting. ``None`` means "the preset's value".

    Attributes:
        data: image folder (recursive), image file, text file listing images, or WebDataset
            tar shards (``shards/train-{000000..000099}.tar``); ``None`` for the sample photos.
        out: run directory to create; ``None`` for a new one under ``runs/``.
        encoder: registered encoder name (``featkit encoders``); with ``init``, the init
            model's.
        encoder_args: keyword arguments of the encoder factory; with ``init``, the init model's.
        init: start from this model's weights instead of random ones: a shipped model's name
            (:func:`featkit.runs.models.pretrained_models`) or a run directory. The run then
            fine-tunes it; ``config.json`` records it and its fingerprint.
        loss: loss spec, e.g. ``"pl+sfl"`` (eq. 7) or ``"pl"``.
        loss_options: options of :func:`featkit.create_loss`.
        contrast: weight of the dense warp-contrastive term added to the loss
            (:class:`featkit.training.contrast.WarpContrast`); 0 trains on the reconstruction loss alone.
        contrast_perspective: largest perspective term of the contrast term's warps, in [0, 0.5)
            (``WarpContrast.max_perspective``); 0 keeps them similarity warps.
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
            million (:func:`featkit.data.windows.plan_epoch`).
        max_side: downscale images so the longer side is at most this; ``None`` keeps them.
        strict: fail before training when any file cannot be used, instead of skipping it.
        seed: seeds the initial weights and the data order.
        device: ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda:0"``, ...
        amp: bfloat16 autocast for the network on CUDA; losses stay float32.
        workers: DataLoader processes decoding images; ``None``: :func:`featkit.data.loading.default_workers`.
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
    init: str | None = None
    loss: str = "pl+sfl"
    loss_options: dict[str, Any] = field(default_factory=dict)
    contrast: float | None = None
    contrast_perspective: float = 0.0
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
        _check(0 <= config.contrast_perspective < 0.5,
               f"contrast_perspective must be in [0, 0.5), got {config.contrast_perspective}")  # fmt: skip
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
        return config if config.init is None or config.resume is not None else _with_init_encoder(config)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings (``resume`` and ``overwrite`` are actions, not settings)."""
        d = dataclasses.asdict(self)
        for transient in ("resume", "overwrite"):
            d.pop(transient)
        return d


def _with_init_encoder(config: TrainConfig) -> TrainConfig:
    """``config`` training the init model's encoder, with ``init`` as an absolute path when it
    is a run directory (what ``config.json`` records)."""
    run_dir = run_directory(config.init)
    if run_dir is None:
        names = ", ".join(pretrained_models()) or "none installed"
        raise TrainConfigError(f"--init '{config.init}' is neither a run directory nor a shipped model ({names})")
    init = str(run_dir.resolve()) if Path(config.init).is_dir() else config.init
    try:
        encoder = read_json(run_dir / CONFIG_FILE)["encoder"]
        name, args = encoder["name"], encoder.get("args", {})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"--init {config.init}: unreadable {run_dir / CONFIG_FILE} ({exc})") from exc
    default = TrainConfig.__dataclass_fields__["encoder"].default
    if config.encoder not in (default, name) or (config.encoder_args and config.encoder_args != args):
        raise TrainConfigError(f"--init {config.init} is a '{name}' model with {args or 'default arguments'}; "
                               f"drop --encoder '{config.encoder}' (and its arguments) or start from another model")  # fmt: skip
    return dataclasses.replace(config, init=init, encoder=name, encoder_args=dict(args))


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise TrainConfigError(message)


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


def resumed_config(requested: TrainConfig) -> TrainConfig:
    run_dir = Path(requested.resume)
    stored = stored_config(run_dir)
    defaults = TrainConfig()
    changes = {k: getattr(requested, k) for k in RESUMABLE_SETTINGS if getattr(requested, k) != getattr(defaults, k)}
    return dataclasses.replace(stored, **changes, resume=str(run_dir), out=str(run_dir)).resolved()

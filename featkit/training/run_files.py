"""The run directory's own files: where it goes, ``config.json`` and ``metrics.csv``."""

from __future__ import annotations

import csv
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from featkit.errors import FeatkitError
from featkit.io import atomic_path, ensure_new, write_json
from featkit.runs.models import CONFIG_FILE
from featkit.training.config import TrainConfig
from featkit.training.trainer import Trainer
from featkit.version import __version__

__all__ = []


def default_run_dir(config: TrainConfig) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    slug = re.sub(r"[^A-Za-z0-9.+-]+", "_", f"{config.encoder}-{config.loss}")
    base = Path("runs") / f"{stamp}-{slug}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def prepare_run_dir(path: Path, overwrite: bool) -> None:
    if path.exists() and overwrite:
        if any(path.iterdir()) and not (path / CONFIG_FILE).is_file():
            raise FeatkitError(f"{path} exists and is not a featkit run directory; refusing to replace it")
        shutil.rmtree(path)
    ensure_new(path, hint="pass --overwrite to replace it, --resume to continue it,")
    path.mkdir(parents=True)


def write_run_config(trainer: Trainer) -> None:
    """``config.json``: the settings, the model, and the data (with every skipped image)."""
    config = trainer.config
    data = dict(trainer.data.summary)
    data["images"] -= len(trainer.late_skipped)
    data["skipped"] = data["skipped"] + [{"path": n, "reason": r} for n, r in trainer.late_skipped.items()]
    write_json(trainer.run_dir / CONFIG_FILE, {
        "featkit": __version__,
        "encoder": trainer.model.config,
        "init": trainer.init,
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


def write_metrics(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    with atomic_path(run_dir / "metrics.csv") as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

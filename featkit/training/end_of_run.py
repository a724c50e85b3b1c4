"""What a run writes beside its weights: the reconstruction figures during training, and at the
end ``summary.json`` (the probe on the run's images), the descriptor whitening, ``curves.png``
and ``report.html``."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from featkit.data.images import decode_image
from featkit.errors import ImageError
from featkit.features.descriptors import describe
from featkit.io import write_json
from featkit.runs.whitening import EMPTY_NORM, WHITENING_FILE, fit_whitening
from featkit.runtime.devices import network_input
from featkit.training.config import TrainConfig
from featkit.training.probe import PROBE_COMPONENTS, evaluate_images
from featkit.training.trainer import Trainer

__all__ = [
    "EVAL_IMAGES",
    "FIGURE_SIDE",
    "WHITENING_DESCRIPTORS",
    "WHITENING_IMAGES",
    "WHITENING_SIDE",
]


#: Images the end-of-run evaluation (``summary.json``) decodes at most, evenly spread.
EVAL_IMAGES = 32
#: Longer side of the images in the reconstruction figures (whatever the training size).
FIGURE_SIDE = 512
#: The descriptor whitening a finished run fits (:mod:`featkit.features.descriptors`): on up to this
#: many of its images, evenly spread, read at most this large (``featkit match``'s default
#: side), from at most this many descriptors in all.
WHITENING_IMAGES, WHITENING_SIDE, WHITENING_DESCRIPTORS = 64, 512, 60_000


def reconstruction_epochs(config: TrainConfig) -> list[int]:
    if config.recon_epochs is not None:
        return sorted({e for e in config.recon_epochs if 1 <= e <= config.epochs})
    return sorted({max(1, round(config.epochs * f)) for f in (0.05, 0.25, 0.5, 0.75)} | {config.epochs})


def spread(count: int, most: int) -> list[int]:
    """At most ``most`` indices evenly spread over ``range(count)`` (all of them when few)."""
    return list(range(count)) if count <= most else [i * count // most for i in range(most)]


def evaluate_run(trainer: Trainer) -> dict[str, float]:
    """:func:`evaluate_images` over up to :data:`EVAL_IMAGES` of the run's images, decoded and
    run one at a time (full-size photos stay within the memory of one image's activations)."""
    refs = trainer.data.collection.refs
    chosen = [i for i in spread(len(refs), EVAL_IMAGES) if refs[i].name not in trainer.late_skipped]
    totals = dict.fromkeys(PROBE_COMPONENTS, 0.0)
    for i in chosen:
        image = decode_image(refs[i], max_side=trainer.config.max_side)[0]
        for name, value in evaluate_images(trainer.model, [image], device=trainer.device).items():
            totals[name] += value / len(chosen)
    return totals


def fit_run_whitening(trainer: Trainer) -> dict[str, Any] | None:
    """Fit the descriptor whitening on up to :data:`WHITENING_IMAGES` of the run's images and
    write it to ``whitening.safetensors``; returns what it was fitted on (``None``: too few
    descriptors, nothing written)."""
    refs, model = trainer.data.collection.refs, trainer.model
    chosen = [i for i in spread(len(refs), WHITENING_IMAGES) if refs[i].name not in trainer.late_skipped]
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


def save_reconstructions(trainer: Trainer, epoch: int) -> None:
    from featkit.report.figures import plot_reconstructions

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


def finish_run(trainer: Trainer, seconds: float) -> None:
    from featkit.report.figures import plot_curves
    from featkit.report.page import write_report

    final = evaluate_run(trainer)
    summary = {"epochs": trainer.epoch, "seconds": round(seconds, 3), "final": final,
               "whitening": fit_run_whitening(trainer)}  # fmt: skip
    write_json(trainer.run_dir / "summary.json", summary)
    plot_curves(trainer.rows, trainer.run_dir / "curves.png", title=f"{trainer.config.encoder}, {trainer.config.loss}")
    write_report(trainer.run_dir)

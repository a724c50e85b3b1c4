"""Figures of a training run: learning curves (Fig. 5) and reconstructions (Figs. 6-7).

Every function draws with matplotlib's non-interactive Agg backend and writes a PNG
atomically; nothing is shown on screen.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from featkit.io import atomic_path  # noqa: E402

__all__ = ["closeup_box", "plot_curves", "plot_reconstructions", "plot_side_by_side", "to_rgb"]


def to_rgb(image: torch.Tensor) -> np.ndarray:
    """:math:`(3, H, W)` in [-1, 1] -> ``(H, W, 3)`` float array in [0, 1] for ``imshow``."""
    return ((image.detach().float().cpu().clamp(-1, 1) + 1) / 2).permute(1, 2, 0).numpy()


def closeup_box(image: torch.Tensor, fraction: float = 0.25) -> tuple[int, int, int, int]:
    """The square window with the most fine detail, for close-ups.

    Detail is the mean absolute Laplacian of the grey image over the window; the window's
    side is ``fraction`` of the shorter image side (at least 8 pixels, at most the image).

    Args:
        image: :math:`(3, H, W)`.
        fraction: window side relative to ``min(H, W)``.

    Returns:
        ``(top, left, height, width)``.
    """
    h, w = image.shape[-2:]
    side = min(max(8, round(min(h, w) * fraction)), h, w)
    grey = image.detach().float().cpu().mean(0, keepdim=True)[None]
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)
    detail = F.conv2d(F.pad(grey, (1, 1, 1, 1), mode="replicate"), kernel).abs()
    energy = F.avg_pool2d(detail, side, stride=1)[0, 0]
    index = int(torch.argmax(energy))
    top, left = divmod(index, energy.shape[-1])
    return top, left, side, side


def _save(fig, path: str | os.PathLike) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_curves(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike, *, title: str = "") -> Path:
    """Fig. 5: PL and every SFL band (unweighted) per epoch, log scale.

    Args:
        rows: one mapping per epoch with ``epoch``, ``pl`` and ``sfl/<sigma>`` keys (the rows
            of ``metrics.csv``).
        path: PNG to write.
        title: figure title.

    Returns:
        ``path``.
    """
    epochs = [int(r["epoch"]) for r in rows]
    names = [k for k in rows[0] if k == "pl" or k.startswith("sfl/")] if rows else []
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, group in zip(axes, (["pl"], [n for n in names if n != "pl"])):
        for name in group:
            values = [float(r[name]) for r in rows]
            ax.plot(epochs, values, label=name if name == "pl" else f"SFL sigma={name.split('/')[1]}")
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    axes[0].set_title("pixel loss (PL)")
    axes[1].set_title("spatial frequency loss per band (unweighted)")
    fig.suptitle(title)
    return _save(fig, path)


def plot_reconstructions(
    originals: Sequence[torch.Tensor], reconstructions: Sequence[torch.Tensor], path: str | os.PathLike, *, title: str = ""
) -> Path:
    """Figs. 6-7: each original beside its reconstruction, then close-ups of both.

    The close-up window (marked on the original) is :func:`closeup_box` of the original.

    Args:
        originals: :math:`(3, H_i, W_i)` in [-1, 1].
        reconstructions: same shapes.
        path: PNG to write.
        title: figure title.

    Returns:
        ``path``.
    """
    n = len(originals)
    fig, axes = plt.subplots(n, 4, figsize=(12, 3 * n), squeeze=False)
    for row, (orig, recon) in enumerate(zip(originals, reconstructions)):
        top, left, h, w = closeup_box(orig)
        panels = [orig, recon, orig[:, top : top + h, left : left + w], recon[:, top : top + h, left : left + w]]
        for ax, panel, label in zip(axes[row], panels, ("original", "reconstruction", "close-up", "close-up")):
            ax.imshow(to_rgb(panel), interpolation="nearest")
            ax.set_title(label, fontsize=9)
            ax.axis("off")
        axes[row][0].add_patch(plt.Rectangle((left - 0.5, top - 0.5), w, h, fill=False, edgecolor="red", lw=1.5))
    fig.suptitle(title)
    return _save(fig, path)


def plot_side_by_side(
    originals: Sequence[torch.Tensor],
    columns: Mapping[str, Sequence[torch.Tensor]],
    path: str | os.PathLike,
    *,
    title: str = "",
) -> Path:
    """Originals beside the reconstructions of several models, each with a close-up row.

    Args:
        originals: :math:`(3, H_i, W_i)` in [-1, 1].
        columns: model label -> reconstructions of ``originals``.
        path: PNG to write.
        title: figure title.

    Returns:
        ``path``.
    """
    labels = ["original", *columns]
    n = len(originals)
    fig, axes = plt.subplots(2 * n, len(labels), figsize=(3.2 * len(labels), 5.6 * n), squeeze=False)
    for i, orig in enumerate(originals):
        top, left, h, w = closeup_box(orig)
        images = [orig, *(columns[k][i] for k in columns)]
        for j, (label, image) in enumerate(zip(labels, images)):
            axes[2 * i][j].imshow(to_rgb(image), interpolation="nearest")
            axes[2 * i][j].set_title(label, fontsize=10)
            axes[2 * i + 1][j].imshow(to_rgb(image[:, top : top + h, left : left + w]), interpolation="nearest")
            axes[2 * i + 1][j].set_title(f"{label}, close-up", fontsize=9)
        axes[2 * i][0].add_patch(plt.Rectangle((left - 0.5, top - 0.5), w, h, fill=False, edgecolor="red", lw=1.5))
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle(title)
    return _save(fig, path)

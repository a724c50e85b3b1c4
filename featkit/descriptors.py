"""Local descriptors read out of a hidden layer: what ``featkit match`` compares and what
``featkit extract`` stores and pools.

The descriptor of cell ``(i, j)`` of a layer's map is made in four steps:

1. each cell's C channels are L2-normalised, so that no cell outweighs its neighbours by
   magnitude alone;
2. with a window ``w > 1`` the ``w x w`` cells around it are stacked (zeros beyond the border):
   :math:`C w^2` numbers that see ``w`` times the layer's stride further;
3. the stack is L2-normalised;
4. when the model carries a :class:`Whitening` fitted for this layer and window (every run that
   ``featkit train`` finishes has one, fitted on its own training images), the unit vector is
   centred, projected on the leading principal axes, scaled by
   :math:`1 / \\sqrt{\\lambda + \\epsilon}` and L2-normalised again: PCA-whitening, as is
   standard for retrieval descriptors (Jegou & Chum, ECCV 2012).

Cells whose map is zero (padding, a dead region) stay zero vectors, which callers drop.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from featkit.checkpoint import load_tensors, save_tensors
from featkit.encoders import AutoEncoder
from featkit.errors import CheckpointError, FeatkitError

__all__ = ["WHITENING_FILE", "Whitening", "describe", "descriptor_dim", "fit_whitening", "stack_cells", "whitening_for"]

#: The file in a run directory holding its fitted :class:`Whitening`.
WHITENING_FILE = "whitening.safetensors"
#: Leading principal axes kept by default.
WHITENING_DIM = 128
#: Regulariser of the whitening: this share of the mean kept eigenvalue is added to each,
#: so weak axes (mostly noise) are not blown up.
WHITENING_SHRINKAGE = 0.1
#: A cell whose norm is below this counts as empty.
EMPTY_NORM = 1e-6


def stack_cells(maps: torch.Tensor, window: int, normalise: bool = True) -> torch.Tensor:
    """Steps 1-3: per-cell L2, ``window x window`` stacking, L2.

    Args:
        maps: :math:`(N, C, h, w)` hidden-layer maps.
        window: odd number of cells per side.
        normalise: ``False`` skips both L2 steps (stacked raw values).

    Returns:
        :math:`(N, C w^2, h, w)`: unit vectors (zero where a whole window is empty), or raw
        stacked values when ``normalise`` is false.

    Raises:
        FeatkitError: ``window`` is not a positive odd number.
    """
    if window < 1 or window % 2 == 0:
        raise FeatkitError(f"window must be a positive odd number of cells, got {window}")
    unit = F.normalize(maps, dim=1, eps=EMPTY_NORM) if normalise else maps
    if window > 1:
        n, _, h, w = unit.shape
        unit = F.unfold(unit, window, padding=window // 2).view(n, -1, h, w)
        unit = F.normalize(unit, dim=1, eps=EMPTY_NORM) if normalise else unit
    return unit


@dataclass
class Whitening:
    """A PCA-whitening of one layer's descriptors with one window.

    Attributes:
        layer: the hidden layer it was fitted on.
        window: the window it was fitted with.
        mean: :math:`(D,)` mean descriptor, ``D = C * window**2``.
        projection: :math:`(D, K)` principal axes scaled by :math:`1 / \\sqrt{\\lambda + \\epsilon}`.
    """

    layer: str
    window: int
    mean: torch.Tensor
    projection: torch.Tensor

    @property
    def dim(self) -> int:
        """K, the length of a whitened descriptor."""
        return int(self.projection.shape[1])

    def apply(self, units: torch.Tensor) -> torch.Tensor:
        """Step 4 on descriptor maps.

        Args:
            units: :math:`(N, D, h, w)` from :func:`stack_cells`.

        Returns:
            :math:`(N, K, h, w)` unit vectors; empty cells stay zero.
        """
        empty = units.norm(dim=1, keepdim=True) < EMPTY_NORM
        mean = self.mean.to(units.device, units.dtype)
        projection = self.projection.to(units.device, units.dtype)
        rows = torch.einsum("ndhw,dk->nkhw", units - mean[None, :, None, None], projection)
        return F.normalize(rows, dim=1, eps=EMPTY_NORM).masked_fill(empty, 0.0)

    def save(self, path: str | os.PathLike) -> Path:
        """Write it as a safetensors file (atomically)."""
        save_tensors(path, {"mean": self.mean.contiguous(), "projection": self.projection.contiguous()},
                     {"layer": self.layer, "window": self.window})  # fmt: skip
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Whitening:
        """Read a file written by :meth:`save`.

        Raises:
            CheckpointError: the file is missing, corrupt or not a whitening.
        """
        tensors, meta = load_tensors(path)
        try:
            whitening = cls(str(meta["layer"]), int(meta["window"]), tensors["mean"], tensors["projection"])
        except KeyError as exc:
            raise CheckpointError(f"{path}: not a featkit whitening (no {exc})") from exc
        if whitening.mean.shape != whitening.projection.shape[:1]:
            raise CheckpointError(f"{path}: mean and projection do not fit ({tuple(whitening.mean.shape)} "
                                  f"against {tuple(whitening.projection.shape)})")  # fmt: skip
        return whitening


def fit_whitening(
    rows: np.ndarray, *, layer: str, window: int, dim: int = WHITENING_DIM, shrinkage: float = WHITENING_SHRINKAGE
) -> Whitening:
    """PCA-whitening of unit descriptors.

    Args:
        rows: :math:`(M, D)` non-empty unit descriptors (from :func:`stack_cells`), M > 1.
        layer, window: what they were read with, recorded in the result.
        dim: principal axes kept (at most D).
        shrinkage: :data:`WHITENING_SHRINKAGE`.

    Returns:
        The :class:`Whitening` (float32 tensors).
    """
    x = np.asarray(rows, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise FeatkitError(f"a whitening needs at least 2 descriptors, got array of shape {x.shape}")
    mean = x.mean(axis=0)
    eigenvalues, axes = np.linalg.eigh(np.cov((x - mean).T))
    keep = min(dim, len(eigenvalues))
    eigenvalues, axes = eigenvalues[::-1][:keep].clip(min=0.0), axes[:, ::-1][:, :keep]
    projection = axes / np.sqrt(eigenvalues + shrinkage * eigenvalues.mean() + 1e-12)
    return Whitening(layer, window, torch.from_numpy(mean).float(), torch.from_numpy(projection.copy()).float())


def descriptor_dim(model: AutoEncoder, layer: str | None = None, window: int | None = None,
                   whiten: bool = True) -> int:  # fmt: skip
    """The length of :func:`describe`'s vectors for these settings."""
    info = model.layer_info(layer)
    window = model.default_window if window is None else window
    whitening = whitening_for(model, info.name, window) if whiten else None
    return whitening.dim if whitening is not None else info.channels * window * window


def whitening_for(model: AutoEncoder, layer: str, window: int) -> Whitening | None:
    """The model's whitening when it was fitted for this layer and window, else ``None``."""
    whitening = getattr(model, "whitening", None)
    if whitening is not None and whitening.layer == layer and whitening.window == window:
        return whitening
    return None


def describe(
    model: AutoEncoder, images: torch.Tensor, *, layer: str | None = None, window: int | None = None,
    whiten: bool = True,
) -> torch.Tensor:  # fmt: skip
    """Dense local descriptors of a batch of images.

    Args:
        model: the encoder; its ``whitening`` attribute (set when a run directory is loaded)
            is applied when it was fitted for this layer and window and ``whiten`` is true.
        images: :math:`(N, 3, H, W)` in [-1, 1], on the model's device.
        layer: a name of ``model.feature_info``; default ``model.default_layer``.
        window: odd cells per side; default ``model.default_window``.
        whiten: apply the model's whitening when it fits.

    Returns:
        :math:`(N, D, h, w)` float32 unit vectors on the layer's grid (zero for empty cells;
        raw stacked values for an encoder with ``normalise_cells = False``),
        :math:`D` = :func:`descriptor_dim`.
    """
    info = model.layer_info(layer)
    window = model.default_window if window is None else window
    units = stack_cells(model.features(images, info.name).float(), window, model.normalise_cells)
    whitening = whitening_for(model, info.name, window) if whiten else None
    return units if whitening is None else whitening.apply(units)

"""The descriptor whitening a run carries: PCA-whitening of unit local descriptors (Jegou & Chum,
ECCV 2012), fitted at the end of training and stored as ``whitening.safetensors`` beside the
weights. How descriptors are read out is :mod:`featkit.features.descriptors`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from featkit.encoders import AutoEncoder
from featkit.errors import CheckpointError, FeatkitError
from featkit.runs.tensors import load_tensors, save_tensors

__all__ = ["EMPTY_NORM", "WHITENING_DIM", "WHITENING_FILE", "WHITENING_SHRINKAGE", "Whitening", "fit_whitening", "whitening_for"]


#: The file in a run directory holding its fitted :class:`Whitening`.
WHITENING_FILE = "whitening.safetensors"
#: Leading principal axes kept by default.
WHITENING_DIM = 128
#: Regulariser of the whitening: this share of the mean kept eigenvalue is added to each,
#: so weak axes (mostly noise) are not blown up.
WHITENING_SHRINKAGE = 0.1
#: A cell whose norm is below this counts as empty.
EMPTY_NORM = 1e-6


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

    def as_convolution(self, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The projection as a convolution over per-cell unit maps.

        A window of cells stacked by :func:`~torch.nn.functional.unfold` (channel-major, then
        row-major offsets) and multiplied by the projection is a ``window x window`` convolution
        with the projection's columns as filters, and centring is a bias: ``(v - m) P = v P - m P``.

        Args:
            channels: C, the layer's channels (``D = C * window**2``).

        Returns:
            ``(weight, bias)``: :math:`(K, C, w, w)` filters and :math:`(K,)` bias ``-mean @ P``.
        """
        w = self.window
        weight = self.projection.T.reshape(self.dim, channels, w, w)
        return weight.contiguous(), -(self.mean @ self.projection)

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


def whitening_for(model: AutoEncoder, layer: str, window: int) -> Whitening | None:
    """The model's whitening when it was fitted for this layer and window, else ``None``."""
    whitening = getattr(model, "whitening", None)
    if whitening is not None and whitening.layer == layer and whitening.window == window:
        return whitening
    return None

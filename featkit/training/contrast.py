"""Dense warp-contrastive learning: a training term that teaches a hidden layer's local
descriptors to recognise the same place in a warped, re-lit copy of an image.

Reconstruction alone does not make features that tell places apart (a trained CAE matched
no better than its random initial weights, issue 13). Alongside the reconstruction loss,
``featkit train --contrast W`` adds ``W`` times this term, an InfoNCE loss (van den Oord et
al., 2018) over dense descriptors, as in dense contrastive learning (Wang et al., CVPR 2021):

1. two views of a random ``side x side`` patch of each training window (the whole window when
   it is smaller): the patch itself and a random similarity warp of it (rotation, scale,
   shift; with ``max_perspective`` > 0 a homography: the similarity with random perspective
   terms, as a camera turned about the patch sees it), each with its own lighting change and
   pixel noise. The patch keeps the term's cost
   a small share of the reconstruction's on large windows;
2. the descriptors of both views (:func:`featkit.features.descriptors.stack_cells`: the layer's cells,
   L2-normalised, with the encoder's default window; no whitening);
3. for up to ``cells`` random cells of the warped view that land inside the first view, the
   descriptor of the first view at the corresponding point (bilinear), and a symmetric
   cross-entropy that scores each cell against every other sampled cell of its image.

Every random draw comes from a generator the caller seeds, so a run stays a pure function of
its seed and position (and resumes exactly).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from featkit.encoders import AutoEncoder
from featkit.features.descriptors import stack_cells

__all__ = ["WarpContrast", "random_similarity", "random_warps", "relight"]

#: Cells of the warped view closer to its border than this (in [-1, 1] units) are not sampled;
#: their windows are mostly padding.
BORDER = 0.9
#: A corresponding point must lie this far inside the first view.
INSIDE = 0.85
#: Fewest usable cells for an image to take part (a few cells make a trivial task).
MIN_CELLS = 8


def random_similarity(
    n: int, generator: torch.Generator, *, max_rotation: float, scale_range: tuple[float, float], max_shift: float
) -> torch.Tensor:
    """Random rotations, scales and shifts as ``affine_grid`` matrices.

    Args:
        n: how many.
        generator: the source of randomness.
        max_rotation: degrees, uniform in ``[-max_rotation, max_rotation]``.
        scale_range: ``(low, high)``, log-uniform.
        max_shift: uniform in ``[-max_shift, max_shift]``, in units of the half-side.

    Returns:
        :math:`(n, 2, 3)`: output point ``p`` (normalised ``[-1, 1]`` coordinates) samples the
        input at ``theta @ [p, 1]``.
    """
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(max_rotation)
    low, high = math.log(scale_range[0]), math.log(scale_range[1])
    scale = torch.exp(low + torch.rand(n, generator=generator) * (high - low))
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = scale * torch.cos(angle), -scale * torch.sin(angle)
    theta[:, 1, 0], theta[:, 1, 1] = scale * torch.sin(angle), scale * torch.cos(angle)
    theta[:, :, 2] = (torch.rand(n, 2, generator=generator) * 2 - 1) * max_shift
    return theta


def random_warps(
    n: int, generator: torch.Generator, *, max_rotation: float, scale_range: tuple[float, float], max_shift: float,
    max_perspective: float = 0.0,
) -> torch.Tensor:  # fmt: skip
    """:func:`random_similarity` as :math:`(n, 3, 3)` homographies, with perspective terms
    uniform in ``[-max_perspective, max_perspective]`` in the last row when it is above 0
    (drawn after the similarity, so similarity warps stay the draws they were).

    Output point ``p`` (normalised ``[-1, 1]`` coordinates) samples the input at
    ``H [p, 1]`` divided by its last coordinate, which stays at least ``1 - 2 max_perspective``
    inside the patch (so ``max_perspective`` must be below 0.5).
    """
    theta = random_similarity(n, generator, max_rotation=max_rotation, scale_range=scale_range, max_shift=max_shift)
    last = torch.tensor([0.0, 0.0, 1.0]).expand(n, 1, 3)
    if max_perspective > 0:
        tilt = (torch.rand(n, 1, 2, generator=generator) * 2 - 1) * max_perspective
        last = torch.cat([tilt, torch.ones(n, 1, 1)], dim=2)
    return torch.cat([theta, last], dim=1)


def _centres(h: int, w: int) -> torch.Tensor:
    """Centres of an ``h x w`` grid in normalised coordinates (``align_corners=False``), row by
    row, homogeneous: :math:`(h w, 3)` of ``(x, y, 1)``."""
    ys, xs = (torch.arange(h) + 0.5) / h * 2 - 1, (torch.arange(w) + 0.5) / w * 2 - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy, torch.ones_like(gx)], -1).view(-1, 3)


def _projected(h: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """``points`` :math:`(P, 3)` homogeneous mapped by each of ``h`` :math:`(n, 3, 3)`:
    :math:`(n, P, 2)`. Exact for affine ``h`` (the division is by 1)."""
    mapped = torch.einsum("bij,pj->bpi", h, points)
    return mapped[..., :2] / mapped[..., 2:]


def relight(images: torch.Tensor, generator: torch.Generator, *, strength: float, noise: float) -> torch.Tensor:
    """A random gain, offset and gamma per image, then Gaussian pixel noise.

    Args:
        images: :math:`(N, C, H, W)` in [-1, 1].
        generator: the source of randomness (on the CPU).
        strength: gain in ``1 +- strength``, gamma in ``exp(+- strength)``, offset in
            ``+- strength / 3`` (of the [0, 1] range).
        noise: the noise's standard deviation is uniform in ``[0, noise]`` per image.

    Returns:
        The changed images, same shape, clamped to [-1, 1].
    """
    n = images.shape[0]

    def uniform(*shape: int) -> torch.Tensor:
        return (torch.rand(*shape, generator=generator) * 2 - 1).to(images.device)

    unit = (images + 1) / 2
    gain, offset = 1 + uniform(n, 1, 1, 1) * strength, uniform(n, 1, 1, 1) * strength / 3
    gamma = torch.exp(uniform(n, 1, 1, 1) * strength)
    unit = unit.clamp(1e-4, 1).pow(gamma) * gain + offset
    sigma = (uniform(n, 1, 1, 1) + 1) / 2 * noise
    unit = unit + torch.randn(images.shape, generator=generator).to(images.device) * sigma
    return (unit * 2 - 1).clamp(-1, 1)


@dataclass(frozen=True)
class WarpContrast:
    """The term's settings (defaults: the recipe measured in ``bench/bench_features.py``).

    Attributes:
        side: pixels per side of the patch each window contributes.
        temperature: InfoNCE temperature.
        cells: cells sampled per image (the others in the image are its negatives).
        max_rotation: degrees.
        scale_range: of the warp, log-uniform.
        max_shift: of the warp, in half-sides.
        max_perspective: largest perspective term of the warp (0: similarity warps; 0.3 is
            about a camera turned 30 degrees about the patch at a 60-degree field of view).
        lighting: :func:`relight` strength of each view.
        noise: :func:`relight` noise of each view.
    """

    side: int = 64
    temperature: float = 0.1
    cells: int = 64
    max_rotation: float = 25.0
    scale_range: tuple[float, float] = (0.8, 1.25)
    max_shift: float = 0.1
    max_perspective: float = 0.0
    lighting: float = 0.3
    noise: float = 0.03

    def __call__(self, model: AutoEncoder, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The mean symmetric InfoNCE over the images that have enough usable cells.

        Args:
            model: the encoder being trained (its default layer and window are used).
            images: :math:`(N, 3, H, W)` in [-1, 1] on the model's device.
            generator: a CPU generator seeded by the caller.

        Returns:
            A 0-dim float32 tensor (0 when no image has :data:`MIN_CELLS` usable cells).
        """
        images = self._patches(images, generator)
        n, device = images.shape[0], images.device
        theta = random_warps(n, generator, max_rotation=self.max_rotation, scale_range=self.scale_range,
                             max_shift=self.max_shift, max_perspective=self.max_perspective)  # fmt: skip
        grid = self._grid(theta, images.shape).to(device)
        warped = F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        views = torch.cat([relight(images, generator, strength=self.lighting, noise=self.noise),
                           relight(warped, generator, strength=self.lighting, noise=self.noise)])  # fmt: skip
        maps = model.features(views, model.default_layer)
        units = stack_cells(maps.float(), model.default_window, model.normalise_cells)
        first, second = units[:n], units[n:]
        h, w = units.shape[-2:]
        points = _centres(h, w)  # cells of the warped view
        sources = _projected(theta, points)  # where they sit in the first view
        total, counted = torch.zeros((), device=device), 0
        for i in range(n):
            usable = (sources[i].abs() < INSIDE).all(1) & (points[:, :2].abs() < BORDER).all(1)
            chosen = torch.nonzero(usable).view(-1)
            if len(chosen) < MIN_CELLS:
                continue
            chosen = chosen[torch.randperm(len(chosen), generator=generator)[: self.cells]]
            queries = second[i].flatten(1)[:, chosen.to(device)].T  # (K, D)
            at = sources[i, chosen].to(device).view(1, 1, -1, 2)
            keys = F.normalize(F.grid_sample(first[i : i + 1], at, mode="bilinear", align_corners=False)[0, :, 0].T, dim=1)
            logits = queries @ keys.T / self.temperature
            target = torch.arange(len(chosen), device=device)
            total = total + (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
            counted += 1
        return total / max(counted, 1)

    def _grid(self, theta: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        """``grid_sample``'s :math:`(n, H, W, 2)` grid of the warps ``theta`` :math:`(n, 3, 3)`:
        ``affine_grid`` for similarity warps (the draws and grids the term always had), each
        output pixel centre mapped by the homography otherwise."""
        if self.max_perspective == 0:
            return F.affine_grid(theta[:, :2], list(shape), align_corners=False)
        h, w = shape[-2:]
        return _projected(theta, _centres(h, w)).view(len(theta), h, w, 2)

    def _patches(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A random ``side x side`` patch of each image (sides already no larger are kept)."""
        height, width = images.shape[-2:]
        h, w = min(height, self.side), min(width, self.side)
        if (h, w) == (height, width):
            return images
        tops = torch.randint(height - h + 1, (len(images),), generator=generator).tolist()
        lefts = torch.randint(width - w + 1, (len(images),), generator=generator).tolist()
        return torch.stack([im[:, t : t + h, l : l + w] for im, t, l in zip(images, tops, lefts)])

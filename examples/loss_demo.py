"""Why SFL: a blurred photo loses high spatial frequencies that PL barely notices.

Blurs each sample photo (the ones scikit-image and scikit-learn ship) at three strengths and
prints, per blur, the pixel loss (eq. 4), the unweighted SFL of each band (eq. 6) and the
ratio of the weighted SFL to PL. Run: ``python examples/loss_demo.py``.
"""

from __future__ import annotations

import sys

import torch
from rich.console import Console
from rich.table import Table

import featkit
from featkit.data.images import find_images, load_images
from featkit.data.samples import sample_images
from featkit.ops.filters import filter2d, gaussian_kernel1d


def blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of (N, 3, H, W) images with replicate borders."""
    g = gaussian_kernel1d(sigma, normalize=True)
    return filter2d(images, g[:, None] * g[None, :], padding_mode="replicate")


def main(argv: list[str] | None = None) -> int:
    records, _ = load_images(find_images(sample_images()), max_side=160)
    pl, sfl = featkit.create_loss("pl"), featkit.create_loss("sfl")
    table = Table(title=f"PL vs SFL on {len(records)} blurred sample photos (mean over photos)")
    for column in ["blur sigma", "PL", *sfl.weights, "weighted SFL / PL"]:
        table.add_column(column, justify="right")
    for sigma in (0.5, 1.0, 2.0):
        rows = []
        for record in records:
            x = record.image[None]
            y = blur(x, sigma)
            total, parts = sfl.evaluate(y, x)
            rows.append([float(pl(y, x)), *[float(v) for v in parts.values()], float(total)])
        mean = torch.tensor(rows).mean(dim=0).tolist()
        table.add_row(f"{sigma:g}", *[f"{v:.2e}" for v in mean[:-1]], f"{mean[-1] / mean[0]:.1f}")
    Console().print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""``daisy``: scikit-image's dense DAISY descriptor on featkit's feature grid.

DAISY (Tola, Lepetit and Fua, "DAISY: An Efficient Dense Descriptor Applied to Wide-Baseline
Stereo", TPAMI 2010) is the classical hand-made descriptor for dense wide-baseline matching:
gradient-orientation histograms, Gaussian-smoothed, sampled at the centre and on rings around
each pixel. Here it is a non-learned encoder, the baseline that learned features must beat at
matching. It is computed with :func:`skimage.feature.daisy` on the CPU (numpy), one image at a
time, on the grey image padded by reflection, so that every cell of the stride-``s`` grid has a
descriptor, including those whose support crosses the border.
"""

from __future__ import annotations

import numpy as np
import torch

from featkit.encoders.base import AutoEncoder, FeatureInfo
from featkit.encoders.registry import register_encoder
from featkit.errors import SpecError

__all__ = ["DaisyFeatures"]

#: scikit-image's DAISY layout: rings of histograms around the centre, orientation bins each.
RINGS, HISTOGRAMS, ORIENTATIONS = 3, 8, 8
#: Descriptor length: the centre histogram plus every ring histogram.
CHANNELS = (RINGS * HISTOGRAMS + 1) * ORIENTATIONS
#: Luminance weights of :func:`skimage.color.rgb2gray` (ITU-R BT.709).
GREY_WEIGHTS = (0.2125, 0.7154, 0.0721)


class DaisyFeatures(AutoEncoder):
    """Dense DAISY descriptors of the grey image as a feature map; reconstruction is the identity.

    Cell ``(r, c)`` holds the descriptor centred at pixel ``(c * s + (s - 1) // 2,
    r * s + (s - 1) // 2)`` (x, y): featkit's nominal cell centre ``(c * s + (s - 1) / 2, ...)``
    rounded down to a whole pixel. For stride 2 that is pixel ``2 c``, where paper-cae's
    stride-2 convolution (3 x 3, padding 1) centres its cells too. Each descriptor is
    L1-normalised (sums to 1) and built from gradients, so it does not change with the
    image's brightness gain and offset (as long as nothing clips). Pooled globally
    (:func:`featkit.extract`'s default grid of 1), the map is the image's mean descriptor: a
    summary of its gradient orientations, smoothed at three scales.

    Args:
        stride: pixels between descriptors (DAISY's ``step``); at most ``2 * radius + 1``.
        radius: radius in pixels of the outermost ring; the support is
            ``(2 * radius + 1)`` pixels square.

    Shape:
        - Input: :math:`(N, 3, H, W)` in [-1, 1].
        - features: :math:`(N, 200, \\lceil H / s \\rceil, \\lceil W / s \\rceil)` on the input's
          device and dtype, values in [0, 1].

    Examples:
        >>> daisy = DaisyFeatures(stride=2)
        >>> daisy.features(torch.zeros(1, 3, 17, 23)).shape
        torch.Size([1, 200, 9, 12])
    """

    def __init__(self, stride: int = 2, radius: int = 15) -> None:
        super().__init__()
        if radius < 1 or not 1 <= stride <= 2 * radius + 1:
            raise SpecError(
                "daisy needs radius >= 1 and 1 <= stride <= 2 * radius + 1, "
                f"got stride {stride}, radius {radius}"
            )
        self.stride, self.radius = int(stride), int(radius)
        self.feature_info = [FeatureInfo("daisy", CHANNELS, self.stride)]
        self.default_layer = "daisy"

    def forward_features(self, x, layers=None):
        weights = torch.tensor(GREY_WEIGHTS, dtype=x.dtype, device=x.device)
        grey = torch.einsum("nchw,c->nhw", (x[:, :3].detach() + 1) / 2, weights)
        maps = np.stack([self._describe(image) for image in grey.float().cpu().numpy()])
        maps = torch.from_numpy(maps).permute(0, 3, 1, 2).to(device=x.device, dtype=x.dtype)
        return (None if layers is not None else x), {"daisy": maps}

    def _describe(self, grey: np.ndarray) -> np.ndarray:
        """DAISY of one :math:`(H, W)` grey image in [0, 1]: :math:`(h, w, 200)` float32."""
        from skimage.feature import daisy as skimage_daisy

        s, r = self.stride, self.radius
        offset = (s - 1) // 2  # descriptor centre within its cell
        cells = [-(-n // s) for n in grey.shape]
        # daisy() centres its descriptors at r, r + s, ... of its input: pad r - offset in front
        # and enough behind that the last cell's descriptor exists too (never < 0 for s <= 2r + 1)
        pads = [(r - offset, (k - 1) * s + offset + r + 1 - n) for k, n in zip(cells, grey.shape)]
        padded = np.pad(grey, pads, mode="reflect")
        desc = skimage_daisy(
            padded, step=s, radius=r, rings=RINGS, histograms=HISTOGRAMS, orientations=ORIENTATIONS
        )
        return desc[: cells[0], : cells[1]]


@register_encoder("daisy")
def daisy(stride: int = 2, radius: int = 15) -> DaisyFeatures:
    """Baseline: scikit-image's dense DAISY descriptor of the grey image, 200-d (no learning)."""
    return DaisyFeatures(stride, radius)

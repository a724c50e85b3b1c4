"""What every featkit autoencoder provides: reconstruction plus declared hidden layers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn

from featkit.errors import UnknownNameError
from featkit.ops.checks import check_image_batch

__all__ = ["AutoEncoder", "FeatureInfo"]


@dataclass(frozen=True)
class FeatureInfo:
    """A hidden feature layer.

    Attributes:
        name: the layer's public name (``--layer``).
        channels: number of channels C of its maps.
        stride: pixels of the input per feature-map cell; cell ``(i, j)`` is centred near
            input pixel ``(i * stride + (stride - 1) / 2, j * stride + (stride - 1) / 2)``.
    """

    name: str
    channels: int
    stride: int

    def as_dict(self) -> dict:
        """Plain dict for manifests."""
        return asdict(self)


class AutoEncoder(nn.Module):
    """Base class: ``forward`` reconstructs, ``features`` exposes hidden layers.

    Inputs are RGB images of shape :math:`(N, 3, H, W)` scaled to [-1, 1]; the reconstruction
    has exactly the input's shape with values in [-1, 1].

    Subclasses set :attr:`feature_info` and :attr:`default_layer`, and implement
    :meth:`forward_features`. One whose pooled descriptor needs spatial layout (a thumbnail of
    pixels) sets :attr:`default_grid`; one whose cells see little of the image (a few pixels)
    sets :attr:`default_window`.
    """

    feature_info: list[FeatureInfo]
    default_layer: str
    #: Pooling grid per side that :func:`featkit.extract` uses when its caller gives none
    #: (1: global pooling, the right thing for learned features).
    default_grid: int = 1
    #: Cells per side stacked into each local descriptor (:func:`featkit.features.descriptors.describe`)
    #: when the caller gives no window: 1 for cells that already see a wide support.
    default_window: int = 1
    #: Whether local descriptors L2-normalise each cell; ``False`` keeps raw values (a
    #: thumbnail of pixels stays a thumbnail).
    normalise_cells: bool = True
    config: dict

    def forward_features(
        self, x: torch.Tensor, layers: Sequence[str] | None = None
    ) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
        """Run the network, returning ``(reconstruction, {layer: map})``.

        When ``layers`` is given, implementations may stop early and return ``None`` as the
        reconstruction once every requested layer is computed.
        """
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction of ``x``: :math:`(N, 3, H, W)` -> :math:`(N, 3, H, W)` in [-1, 1]."""
        return self.forward_features(x)[0]

    def layer_info(self, name: str | None = None) -> FeatureInfo:
        """The :class:`FeatureInfo` of ``name`` (default: :attr:`default_layer`).

        Raises:
            UnknownNameError: listing this encoder's layers.
        """
        name = name or self.default_layer
        for info in self.feature_info:
            if info.name == name:
                return info
        names = ", ".join(i.name for i in self.feature_info)
        raise UnknownNameError(f"unknown layer '{name}'. Layers of this encoder: {names}")

    def features(self, x: torch.Tensor, layer: str | None = None) -> torch.Tensor:
        """Dense hidden-layer maps.

        Args:
            x: :math:`(N, 3, H, W)` in [-1, 1].
            layer: a name from :attr:`feature_info`; default :attr:`default_layer`.

        Returns:
            :math:`(N, C, \\lceil H / s \\rceil, \\lceil W / s \\rceil)` for the layer's channels C
            and stride s.
        """
        info = self.layer_info(layer)
        check_image_batch(x, "images", min_channels=3)
        return self.forward_features(x, [info.name])[1][info.name]

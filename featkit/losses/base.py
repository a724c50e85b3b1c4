"""The contract every featkit loss follows: a weighted sum of named, unweighted components."""

from __future__ import annotations

import torch
from torch import nn

from featkit.ops.checks import check_image_batch, check_same_shape

__all__ = ["Loss"]


class Loss(nn.Module):
    """Base class of the built-in losses.

    A loss is called as ``loss(output, target)`` on tensors of shape :math:`(N, C, H, W)` with
    values in [-1, 1] and returns a 0-dim tensor. It is a weighted sum of named components
    (``"pl"``, ``"sfl/0.8"``, ...), each unweighted and averaged over the batch, so learning
    curves can show every band on the same footing as in the paper's Fig. 5.

    Subclasses set :attr:`weights` (component name -> weight) and implement :meth:`components`.
    """

    #: Component name -> weight in the total. Set by subclasses.
    weights: dict[str, float]

    def components(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Unweighted components, each a 0-dim tensor. Inputs are already checked."""
        raise NotImplementedError

    def check_inputs(self, output: torch.Tensor, target: torch.Tensor) -> None:
        """Raise :class:`~featkit.errors.ShapeError` unless both are finite (N, C, H, W) alike."""
        check_image_batch(output, "output")
        check_image_batch(target, "target")
        check_same_shape(output, target)

    def evaluate(
        self, output: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The total and the unweighted components.

        Args:
            output: reconstruction, :math:`(N, C, H, W)` in [-1, 1].
            target: original, same shape.

        Returns:
            ``(total, components)``: a 0-dim tensor and a dict of 0-dim tensors.
        """
        self.check_inputs(output, target)
        parts = self.components(output, target)
        total = sum(self.weights[name] * value for name, value in parts.items())
        return total, parts

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.evaluate(output, target)[0]

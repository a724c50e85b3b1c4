"""Losses for learning CAEs: ``pl`` (eq. 4), ``sfl`` (eq. 5-6) and weighted sums (eq. 7)."""

from featkit.losses import dog, frequency, pixel  # noqa: F401  (registers the built-ins)
from featkit.losses.base import Loss
from featkit.losses.dog import DoGSpatialFrequencyLoss, inverse_error_ratio
from featkit.losses.frequency import PAPER_SCALES, PAPER_WEIGHTS, SpatialFrequencyLoss
from featkit.losses.pixel import PixelLoss, pixel_loss
from featkit.losses.registry import LOSSES, register_loss
from featkit.losses.spec import WeightedSum, create_loss, list_losses, parse_spec

__all__ = [
    "LOSSES",
    "DoGSpatialFrequencyLoss",
    "PAPER_SCALES",
    "PAPER_WEIGHTS",
    "Loss",
    "PixelLoss",
    "SpatialFrequencyLoss",
    "WeightedSum",
    "create_loss",
    "inverse_error_ratio",
    "list_losses",
    "parse_spec",
    "pixel_loss",
    "register_loss",
]

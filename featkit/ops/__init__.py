"""Tensor operations shared by losses, encoders and matching."""

from featkit.ops.checks import check_image_batch, check_same_shape
from featkit.ops.filters import (
    PADDING_MODES,
    filter2d,
    gaussian_kernel1d,
    kernel_size_for_sigma,
    log_filter_bank,
    log_kernel1d_pair,
    log_kernel2d,
    LoGFilterBank,
)

__all__ = [
    "PADDING_MODES",
    "LoGFilterBank",
    "check_image_batch",
    "check_same_shape",
    "filter2d",
    "gaussian_kernel1d",
    "kernel_size_for_sigma",
    "log_filter_bank",
    "log_kernel1d_pair",
    "log_kernel2d",
]

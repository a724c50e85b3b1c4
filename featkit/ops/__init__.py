"""Tensor operations shared by losses, encoders and matching."""

from featkit.ops.checks import check_image_batch, check_same_shape
from featkit.ops.filters import (
    PADDING_MODES,
    DoGFilterBank,
    LoGFilterBank,
    dog_filter_bank,
    dog_scales,
    dog_transfer,
    fft_band_energy,
    fft_filter_bank,
    fft_size,
    filter2d,
    gaussian_kernel1d,
    kernel_size_for_sigma,
    log_filter_bank,
    log_kernel1d_pair,
    log_kernel2d,
    log_transfer,
    min_grid,
)

__all__ = [
    "PADDING_MODES",
    "DoGFilterBank",
    "LoGFilterBank",
    "check_image_batch",
    "check_same_shape",
    "dog_filter_bank",
    "dog_scales",
    "dog_transfer",
    "fft_band_energy",
    "fft_filter_bank",
    "fft_size",
    "filter2d",
    "gaussian_kernel1d",
    "kernel_size_for_sigma",
    "log_filter_bank",
    "log_kernel1d_pair",
    "log_kernel2d",
    "log_transfer",
    "min_grid",
]

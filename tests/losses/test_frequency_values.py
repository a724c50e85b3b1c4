"""pl (eq. 4), sfl (eq. 5-6) and sfl-dog against direct convolutions written from the equations."""

from __future__ import annotations

import math

import pytest
import torch

import featkit
from featkit.errors import ShapeError
from featkit.losses import PAPER_SCALES, PAPER_WEIGHTS
from featkit.ops.filters import PADDING_MODES, log_kernel2d

from loss_reference import dog_bands, log_kernel, pl, sfl_bands

# odd, non-square, and smaller than the 27 x 27 kernel of sigma = 3.2
SHAPES = [(2, 3, 15, 22), (1, 3, 9, 5), (3, 3, 31, 17), (1, 1, 2, 3)]


def _images(shape, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g, dtype=dtype) * 2 - 1, torch.rand(
        shape, generator=g, dtype=dtype
    ) * 2 - 1


def _fits(mode, shape):
    """reflect needs images larger than the pad (13), circular at least as large."""
    radius = 13
    return {"reflect": min(shape[-2:]) > radius, "circular": min(shape[-2:]) >= radius}.get(
        mode, True
    )


@pytest.mark.parametrize("shape", SHAPES)
def test_pl_matches_eq4(shape):
    output, target = _images(shape)
    assert torch.allclose(featkit.create_loss("pl")(output, target), pl(output, target), rtol=1e-12)


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize(
    "shape, mode", [(s, m) for s in SHAPES for m in PADDING_MODES if _fits(m, s)]
)
def test_sfl_matches_direct_convolution(shape, mode, per_channel):
    output, target = _images(shape)
    loss = featkit.create_loss("sfl", padding=mode, per_channel=per_channel)
    total, parts = loss.evaluate(output, target)
    expected = sfl_bands(output, target, PAPER_SCALES, mode, per_channel)
    assert list(parts) == ["sfl/0.8", "sfl/1.6", "sfl/3.2"]
    assert torch.allclose(torch.stack(list(parts.values())), expected, rtol=1e-9, atol=1e-14)
    assert torch.allclose(
        total, (torch.tensor(PAPER_WEIGHTS, dtype=total.dtype) * expected).sum(), rtol=1e-9
    )


def test_sfl_float32_close_to_float64_reference():
    output, target = _images((2, 3, 33, 20))
    ours = featkit.create_loss("sfl")(output.float(), target.float())
    expected = (
        torch.tensor(PAPER_WEIGHTS, dtype=torch.float64) * sfl_bands(output, target, PAPER_SCALES)
    ).sum()
    assert float(ours) == pytest.approx(float(expected), rel=1e-5)


def test_sfl_custom_scales_and_weights():
    output, target = _images((1, 3, 12, 14))
    loss = featkit.create_loss("sfl", scales=(1.0, 2.0), weights=(3.0, 0.5))
    expected = (
        torch.tensor([3.0, 0.5], dtype=torch.float64) * sfl_bands(output, target, (1.0, 2.0))
    ).sum()
    assert torch.allclose(loss(output, target), expected, rtol=1e-9)


def test_reflect_padding_needs_larger_images():
    output, target = _images((1, 3, 9, 30))
    with pytest.raises(ShapeError, match="reflect padding of 13"):
        featkit.create_loss("sfl", padding="reflect")(output, target)


@pytest.mark.parametrize("shape", [(2, 3, 13, 10), (1, 2, 5, 4)])
def test_sfl_dog_matches_direct_convolution(shape):
    output, target = _images(shape)
    weights = [0.5, 1, 2, 3, 4, 5, 6]
    total, parts = featkit.create_loss("sfl-dog", weights=weights).evaluate(output, target)
    expected = dog_bands(output, target)
    assert list(parts) == [f"sfl-dog/{i}" for i in range(7)]
    assert torch.allclose(torch.stack(list(parts.values())), expected, rtol=1e-9, atol=1e-15)
    assert torch.allclose(
        total, (torch.tensor(weights, dtype=torch.float64) * expected).sum(), rtol=1e-9
    )


def test_sfl_dog_options_match_direct_convolution():
    output, target = _images((1, 3, 17, 12))
    loss = featkit.create_loss("sfl-dog", base=0.8, radix=1.5, num_subbands=4, padding="zeros")
    expected = dog_bands(output, target, base=0.8, radix=1.5, num_subbands=4, mode="zeros")
    assert torch.allclose(
        torch.stack(list(loss.evaluate(output, target)[1].values())), expected, rtol=1e-9
    )


def test_sfl_dog_calibration_is_mean_inverse_error_ratio():
    loss = featkit.create_loss("sfl-dog", num_subbands=4)
    batches = [_images((2, 3, 11, 9), seed=s) for s in (1, 2)] + [_images((1, 3, 8, 13), seed=3)]
    weights = loss.calibrate([o for o, _ in batches], [t for _, t in batches])
    ratios = []
    for output, target in batches:
        for i in range(output.shape[0]):
            o, t = output[i : i + 1], target[i : i + 1]
            ratios.append((o - t).square().mean() / dog_bands(o, t, num_subbands=4))
    expected = torch.stack(ratios).mean(dim=0)
    assert list(weights) == list(loss.weights) == [f"sfl-dog/{i}" for i in range(4)]
    assert torch.allclose(
        torch.tensor(list(weights.values()), dtype=torch.float64), expected, rtol=1e-9
    )
    # a weighted total now equals sum_i IER_i * L_i
    output, target = batches[0]
    parts = loss.evaluate(output, target)[1]
    assert float(loss(output, target)) == pytest.approx(
        sum(weights[k] * float(v) for k, v in parts.items())
    )


def test_sfl_dog_calibration_rejects_mismatched_batches():
    loss = featkit.create_loss("sfl-dog")
    output, target = _images((1, 3, 8, 8))
    with pytest.raises(ShapeError):
        loss.calibrate([output, output], [target])
    with pytest.raises(ShapeError, match="same shape"):
        loss.calibrate(output, target[..., :7])


def test_sfl_dog_matches_published_package():
    published = pytest.importorskip("spatial_frequency_loss")
    output, target = (t.float() for t in _images((2, 3, 40, 29)))
    weights = [1.0, 2.0, 3.0, 1.0, 0.5, 0.25, 0.1]
    theirs = published.SpatialFrequencyLoss(
        3, 0.6, 7, ier_update_mode="fixed", subband_weights=weights
    )
    subbands, total = theirs(output, target)[:2]
    ours_total, parts = featkit.create_loss("sfl-dog", weights=weights).evaluate(output, target)
    assert torch.allclose(torch.stack(list(parts.values())), subbands, rtol=1e-4)
    assert float(ours_total) == pytest.approx(float(total), rel=1e-4)


@pytest.mark.parametrize("spec", ["pl", "sfl", "pl+0.5*sfl", "sfl-dog"])
def test_gradcheck_float64(spec):
    options = {"sfl-dog": {"num_subbands": 3}}.get(spec, {})
    loss = featkit.create_loss(spec, **options)
    output, target = _images((1, 2, 7, 6))
    output.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda o: loss(o, target), (output,), fast_mode=True)


@pytest.mark.parametrize("mode", ["zeros", "replicate"])
def test_sfl_gradcheck_per_channel_and_padding(mode):
    loss = featkit.create_loss("sfl", padding=mode, per_channel=True, scales=(0.8, 1.6))
    output, target = _images((2, 3, 6, 5))
    output.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda o: loss(o, target), (output,), fast_mode=True)


@pytest.mark.parametrize("spec", ["pl", "sfl", "pl+sfl", "sfl-dog"])
def test_zero_for_identical_inputs(spec):
    x = _images((2, 3, 11, 16))[0].float()
    total, parts = featkit.create_loss(spec).evaluate(x, x.clone())
    assert float(total) == 0.0 and all(float(v) == 0.0 for v in parts.values())


def _radial_response(sigma: float, grid: int = 128) -> torch.Tensor:
    """|DFT| of the LoG kernel along the u axis (v = 0), for u = 0 .. grid / 2."""
    kernel = log_kernel(sigma)
    k = kernel.shape[0]
    padded = torch.zeros(grid, grid, dtype=torch.float64)
    padded[:k, :k] = kernel
    return torch.fft.fft2(padded).abs()[0, : grid // 2 + 1]


def test_log_bank_is_band_pass_with_centre_falling_as_sigma_grows():
    """Fig. 3: each LoG passes a band; the smaller the scale, the higher the band."""
    peaks = []
    for sigma in PAPER_SCALES:
        response = _radial_response(sigma)
        peak = int(response.argmax())
        assert response[0] < 0.05 * response[peak]  # (almost) no DC
        assert response[-1] < 0.75 * response[peak]  # attenuated at Nyquist (aliased for 0.8)
        assert 0 < peak < len(response) - 1
        # centre near the continuous LoG's peak frequency 1 / (sqrt(2) pi sigma)
        assert peak / 128 == pytest.approx(1 / (math.sqrt(2) * math.pi * sigma), rel=0.15)
        peaks.append(peak)
    assert peaks[0] > peaks[1] > peaks[2]
    # featkit's own kernels are the same samples
    for sigma in PAPER_SCALES:
        assert torch.allclose(
            log_kernel2d(sigma, dtype=torch.float64), log_kernel(sigma), atol=1e-15
        )


def test_blurred_photo_is_penalised_far_more_by_sfl_than_pl(small_photos):
    """Blur removes high frequencies: SFL per unit of pixel error is far larger for a blur than
    for a smooth (low-frequency) distortion of the same pixel error."""
    pl_loss, sfl_loss = featkit.create_loss("pl"), featkit.create_loss("sfl")
    g = torch.exp(-(torch.arange(-3.0, 4.0) ** 2) / 2)
    g = g / g.sum()
    for photo in small_photos:
        x = photo[None]
        blurred = torch.nn.functional.conv2d(
            torch.nn.functional.pad(x, (3, 3, 3, 3), mode="replicate"),
            (g[:, None] * g[None, :]).expand(3, 1, 7, 7),
            groups=3,
        )
        h, w = x.shape[-2:]
        ramp = (
            torch.linspace(-1, 1, w)[None, None, None, :]
            * torch.linspace(-1, 1, h)[None, None, :, None]
        )
        ramp = ramp * (float(pl_loss(blurred, x)) / float(pl_loss(x + ramp, x))) ** 0.5
        smooth = x + ramp
        assert float(pl_loss(smooth, x)) == pytest.approx(float(pl_loss(blurred, x)), rel=1e-4)
        ratio_blur = float(sfl_loss(blurred, x)) / float(pl_loss(blurred, x))
        ratio_smooth = float(sfl_loss(smooth, x)) / float(pl_loss(smooth, x))
        assert ratio_blur > 10 * ratio_smooth
        assert ratio_blur > 5  # weighted SFL dwarfs PL for a blur


def test_fft_size_is_the_smallest_fast_length():
    from featkit.ops.filters import fft_size

    def fast(m: int) -> bool:
        odd = 0
        for p in (3, 5, 7):
            while m % p == 0:
                m, odd = m // p, odd + 1
        return odd <= 3 and m & (m - 1) == 0

    for n in range(1, 1500):
        m = fft_size(n)
        assert m >= n and fast(m) and not any(fast(k) for k in range(n, m))


@pytest.mark.parametrize("mode", PADDING_MODES)
def test_filter_bank_on_its_smallest_grid_matches_direct_convolution(mode):
    """The grid only has to hold H + r with zero padding (H + 2r otherwise): nothing wraps."""
    from featkit.ops.filters import fft_filter_bank, filter2d, log_transfer, min_grid

    x = torch.randn(2, 3, 31, 40, dtype=torch.float64)
    radius = 13  # sigma 3.2
    grid = min_grid((31, 40), radius, mode)
    assert grid[0] < 31 + 2 * radius or mode != "zeros"
    got = fft_filter_bank(x, log_transfer([3.2], grid, dtype=torch.float64), grid, radius, mode)[:, :, 0]
    want = filter2d(x, log_kernel2d(3.2, dtype=torch.float64), mode)
    assert torch.allclose(got, want, atol=1e-10)
    with pytest.raises(ShapeError, match="too small"):
        fft_filter_bank(x, log_transfer([3.2], (grid[0] - 1, grid[1]), dtype=torch.float64), (grid[0] - 1, grid[1]), radius, mode)

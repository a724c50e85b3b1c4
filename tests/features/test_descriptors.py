"""featkit.features.descriptors and featkit.training.contrast: local descriptors, whitening, the warp-contrastive term."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from featkit.encoders import create_encoder
from featkit.features import descriptors
from featkit.errors import CheckpointError, FeatkitError
from featkit.features.descriptors import describe, descriptor_dim, stack_cells, whitened_cells
from featkit.io import write_json
from featkit.runs.models import load_model, save_model
from featkit.runs.whitening import WHITENING_FILE, Whitening, fit_whitening
from featkit.training.contrast import WarpContrast, random_similarity, random_warps, relight
from tests.rounding import gamma


def test_stack_cells_normalises_each_cell_then_the_window():
    maps = torch.zeros(1, 2, 3, 3)
    maps[0, :, 1, 1] = torch.tensor([30.0, 40.0])  # a strong centre cell
    maps[0, :, 0, 0] = torch.tensor([0.001, 0.0])  # a faint corner cell
    units = stack_cells(maps, 3)
    assert units.shape == (1, 18, 3, 3)
    centre = units[0, :, 1, 1].view(2, 9).T  # channel-major (as F.unfold): the window's 9 cells, 2 channels each
    # after per-cell L2 the faint corner weighs as much as the strong centre
    torch.testing.assert_close(centre[4], torch.tensor([0.6, 0.8]) / 2**0.5)
    torch.testing.assert_close(centre[0], torch.tensor([1.0, 0.0]) / 2**0.5)
    torch.testing.assert_close(units.norm(dim=1)[0], torch.ones(3, 3))
    assert stack_cells(maps, 1).shape == (1, 2, 3, 3)
    raw = stack_cells(maps, 3, normalise=False)
    torch.testing.assert_close(raw[0, [4, 13], 1, 1], torch.tensor([30.0, 40.0]))
    with pytest.raises(FeatkitError, match="odd"):
        stack_cells(maps, 2)


def test_whitening_decorrelates_and_keeps_empty_cells_empty():
    rng = np.random.default_rng(0)
    mixing = rng.standard_normal((6, 6)) * np.array([5.0, 3.0, 1.0, 0.5, 0.2, 0.1])
    rows = rng.standard_normal((5000, 6)) @ mixing.T + 2.0
    whitening = fit_whitening(rows, layer="conv2", window=1, dim=4, shrinkage=0.0)
    assert whitening.dim == 4 and whitening.projection.shape == (6, 4)
    projected = (torch.from_numpy(rows).float() - whitening.mean) @ whitening.projection
    cov = np.cov(projected.numpy().T)
    np.testing.assert_allclose(cov, np.eye(4), atol=0.05)  # unit variance along each kept axis
    maps = torch.from_numpy(rows[:4].T.copy()).float().view(1, 6, 2, 2)
    maps[0, :, 1, 1] = 0.0
    out = whitening.apply(maps)
    assert out.shape == (1, 4, 2, 2)
    torch.testing.assert_close(out[0, :, 1, 1], torch.zeros(4))
    torch.testing.assert_close(out.norm(dim=1)[0].flatten()[:3], torch.ones(3))


@pytest.mark.parametrize("strip_rows", [None, 5])
@pytest.mark.parametrize("window", [1, 3])
def test_the_whitened_readout_as_one_convolution_equals_stack_then_project(window, strip_rows, monkeypatch):
    if strip_rows:  # strips of 5 rows: 10 of them over the 48 rows, the last one short
        monkeypatch.setattr(descriptors, "STRIP_BYTES", 4 * 2 * 40 * 128 * strip_rows)
    torch.manual_seed(0)
    model = create_encoder("paper-cae").eval()
    images = torch.rand(2, 3, 96, 80) * 2 - 1
    images[0, :, :40, :40] = 0.0  # a flat region: empty windows must stay zero
    with torch.no_grad():
        maps = model.features(images, "conv2").float()
        maps[0, :, :6, :6] = 0.0
        stacks = stack_cells(maps, window)
        whitening = fit_whitening(stacks.flatten(2).transpose(1, 2).reshape(-1, stacks.shape[1]).numpy()[::3],
                                  layer="conv2", window=window)  # fmt: skip
        before = whitening.apply(stacks)
        after = whitened_cells(maps, whitening)
    assert after.shape == before.shape
    empty = before.norm(dim=1) == 0
    assert empty.any() and torch.equal(after.norm(dim=1) == 0, empty)
    # Both sum the same D = C w^2 products per number in other orders (the stack's norm too), so
    # each projected number differs by at most 2 gamma_(D+C+w^2) of the sum of the magnitudes it
    # adds, |P|^T (|v| + |m|); after the final L2 step that error is relative to |(v - m) P|, which
    # centring can make small beside the terms (the bound's condition number).
    d = stacks.shape[1]
    magnitudes = torch.einsum("ndhw,dk->nkhw", stacks.abs() + whitening.mean.abs()[None, :, None, None],
                              whitening.projection.abs())  # fmt: skip
    centred = torch.einsum("ndhw,dk->nkhw", stacks - whitening.mean[None, :, None, None], whitening.projection)
    condition = magnitudes.norm(dim=1) / centred.norm(dim=1).clamp(min=1e-30)
    bound = 4 * gamma(d + maps.shape[1] + window**2) * condition
    error = (after - before).norm(dim=1)
    assert bool((error[~empty] <= bound[~empty]).all()), float((error / bound)[~empty].max())


def test_a_run_directory_carries_its_whitening(tmp_path):
    torch.manual_seed(0)
    model = create_encoder("paper-cae")
    save_model(tmp_path, model)
    write_json(tmp_path / "config.json", {"encoder": model.config})
    image = torch.rand(1, 3, 24, 20) * 2 - 1
    loaded, _ = load_model(tmp_path)
    assert getattr(loaded, "whitening", None) is None and descriptor_dim(loaded) == 16 * 9
    rows = stack_cells(loaded.features(image), 3)[0].flatten(1).T.detach().numpy()
    fit_whitening(rows, layer="conv2", window=3, dim=8).save(tmp_path / WHITENING_FILE)
    loaded, _ = load_model(tmp_path)
    assert loaded.whitening.dim == 8 and descriptor_dim(loaded) == 8
    with torch.no_grad():
        assert describe(loaded, image).shape == (1, 8, 12, 10)
        assert describe(loaded, image, whiten=False).shape == (1, 144, 12, 10)
        assert describe(loaded, image, window=1).shape == (1, 16, 12, 10)  # fitted for window 3 only
    Whitening("conv1", 1, torch.zeros(5), torch.zeros(5, 2)).save(tmp_path / WHITENING_FILE)
    with pytest.raises(CheckpointError, match="another model"):
        load_model(tmp_path)


def test_random_similarity_and_relight_are_seeded_and_bounded():
    a = random_similarity(5, torch.Generator().manual_seed(1), max_rotation=25, scale_range=(0.8, 1.25), max_shift=0.1)
    b = random_similarity(5, torch.Generator().manual_seed(1), max_rotation=25, scale_range=(0.8, 1.25), max_shift=0.1)
    torch.testing.assert_close(a, b)
    scale = torch.linalg.det(a[:, :, :2]).sqrt()
    assert bool(((scale > 0.8 - 1e-6) & (scale < 1.25 + 1e-6)).all()) and bool((a[:, :, 2].abs() <= 0.1).all())
    images = torch.rand(3, 3, 8, 8) * 2 - 1
    lit = relight(images, torch.Generator().manual_seed(0), strength=0.3, noise=0.03)
    assert lit.shape == images.shape and lit.min() >= -1 and lit.max() <= 1 and not torch.equal(lit, images)


def test_perspective_warps_keep_the_similarity_draws_and_map_points_as_their_grid_samples():
    args = {"max_rotation": 25, "scale_range": (0.8, 1.25), "max_shift": 0.1}
    similar = random_warps(4, torch.Generator().manual_seed(2), **args)
    torch.testing.assert_close(similar[:, :2], random_similarity(4, torch.Generator().manual_seed(2), **args))
    assert bool((similar[:, 2] == torch.tensor([0.0, 0.0, 1.0])).all())
    tilted = random_warps(4, torch.Generator().manual_seed(2), max_perspective=0.3, **args)
    torch.testing.assert_close(tilted[:, :2], similar[:, :2])  # the same similarity, then the tilt
    assert bool((tilted[:, 2, :2].abs() <= 0.3).all()) and bool((tilted[:, 2, :2] != 0).all())
    # the warped view's pixel (r, c) shows the first view at the point the term pairs it with
    term = WarpContrast(max_perspective=0.3)
    side = 33
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, side), torch.linspace(-1, 1, side), indexing="ij")
    ramp = torch.stack([xx, yy, xx * yy])[None].expand(4, -1, -1, -1)  # pixel values code positions
    grid = term._grid(tilted, ramp.shape)
    warped = F.grid_sample(ramp, grid, mode="bilinear", align_corners=False)
    centre = side // 2
    x = (centre + 0.5) / side * 2 - 1
    mapped = tilted @ torch.tensor([x, x, 1.0])
    expected = mapped[:, :2] / mapped[:, 2:]  # normalised (x, y) in the first view
    # linspace(-1, 1) puts pixel i at -1 + 2 i / (side - 1): the ramp reads back its own position
    seen = warped[:, :2, centre, centre] * (side - 1) / side  # grid_sample's align_corners=False scale
    torch.testing.assert_close(seen, expected, atol=2e-3, rtol=0)
    value = term(create_encoder("paper-cae"), torch.rand(2, 3, 64, 64) * 2 - 1, torch.Generator().manual_seed(0))
    assert math.isfinite(value.item()) and value.item() > 0


def test_the_contrast_term_rewards_descriptors_that_follow_the_warp():
    """InfoNCE is low for an encoder whose descriptors are the (position-coding) pixels
    themselves and near log(cells) for one whose descriptors ignore the image."""
    torch.manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 64), torch.linspace(-1, 1, 64), indexing="ij")
    coded = torch.stack([torch.sin(6 * xx), torch.cos(5 * yy), torch.sin(4 * (xx + yy))])[None].expand(2, -1, -1, -1)
    term = WarpContrast(lighting=0.0, noise=0.0, cells=32)
    pixels = create_encoder("pixels", stride=2)
    informative = term(pixels, coded.contiguous(), torch.Generator().manual_seed(0))
    flat = term(pixels, torch.zeros(2, 3, 64, 64), torch.Generator().manual_seed(0))
    assert float(informative) < 0.5 * float(flat) and abs(float(flat) - np.log(32)) < 0.3


def test_the_contrast_term_trains_the_encoder_and_handles_tiny_windows():
    torch.manual_seed(0)
    model = create_encoder("paper-cae")
    images = F.interpolate(torch.rand(2, 3, 12, 12) * 2 - 1, size=(96, 96), mode="bilinear")
    value = WarpContrast()(model, images, torch.Generator().manual_seed(0))
    value.backward()
    assert value.requires_grad and float(value.detach()) > 0
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in model.encoder.parameters())
    tiny = WarpContrast()(model, torch.zeros(2, 3, 3, 3), torch.Generator().manual_seed(0))
    assert float(tiny) == 0.0  # too few cells to contrast: no term rather than a failure

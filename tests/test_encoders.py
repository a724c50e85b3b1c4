"""Encoder contract, parametrized over the registry: every encoder, plugins included."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from featkit.encoders import AutoEncoder, ConvAutoEncoder, create_encoder, list_encoders
from featkit.errors import FeatkitError, UnknownNameError

ENCODER_NAMES = [*list_encoders(), "timm:resnet18"]
ODD_SIZES = [(17, 23), (9, 31)]


@pytest.fixture(scope="module", params=ENCODER_NAMES)
def encoder(request) -> AutoEncoder:
    torch.manual_seed(0)
    return create_encoder(request.param).eval()


@pytest.mark.parametrize("size", ODD_SIZES)
def test_reconstruction_has_the_input_size(encoder, size):
    x = torch.rand(2, 3, *size) * 2 - 1
    with torch.no_grad():
        y = encoder(x)
    assert y.shape == x.shape
    assert float(y.abs().max()) <= 1.0


@pytest.mark.parametrize("size", ODD_SIZES)
def test_feature_info_matches_real_maps(encoder, size):
    x = torch.rand(1, 3, *size) * 2 - 1
    with torch.no_grad():
        _, maps = encoder.forward_features(x)
        assert set(maps) == {info.name for info in encoder.feature_info}
        for info in encoder.feature_info:
            expected = (1, info.channels, math.ceil(size[0] / info.stride), math.ceil(size[1] / info.stride))
            assert tuple(maps[info.name].shape) == expected, info
            assert torch.equal(encoder.features(x, info.name), maps[info.name])


@pytest.mark.parametrize("name", ENCODER_NAMES)
@pytest.mark.parametrize("size", [(1, 1), (2, 2), (32, 32), (1, 5000), (5000, 1)])
def test_any_image_size_trains(name, size):
    """A single image of any size >= 1 x 1 goes forward and backward in training mode
    (BatchNorm needs more than one value per channel: timm backbones pad tiny images)."""
    torch.manual_seed(0)
    model = create_encoder(name).train()
    x = torch.rand(1, 3, *size) * 2 - 1
    y, maps = model.forward_features(x)
    assert y.shape == x.shape
    for info in model.feature_info:
        expected = (1, info.channels, math.ceil(size[0] / info.stride), math.ceil(size[1] / info.stride))
        assert tuple(maps[info.name].shape) == expected, info
    if y.requires_grad:
        y.square().mean().backward()
        grads = [p.grad for p in model.parameters() if p.requires_grad]
        assert grads and all(g is not None and bool(torch.isfinite(g).all()) for g in grads)


def test_config_rebuilds_the_encoder(encoder):
    again = create_encoder(encoder.config["name"], **encoder.config["args"])
    assert again.state_dict().keys() == encoder.state_dict().keys()


def test_unknown_layer_lists_the_layers(encoder):
    with pytest.raises(UnknownNameError, match=encoder.feature_info[0].name):
        encoder.layer_info("no-such-layer")


def test_paper_cae_is_table_1():
    model = create_encoder("paper-cae")
    convs = [model.encoder[0], model.encoder[1], model.decoder[0], model.output]
    shapes = [tuple(c.weight.shape) for c in convs]
    assert shapes == [(32, 3, 3, 3), (16, 32, 3, 3), (32, 16, 3, 3), (3, 32, 3, 3)]
    assert [c.stride for c in convs] == [(1, 1), (2, 2), (1, 1), (1, 1)]
    assert [(i.name, i.channels, i.stride) for i in model.feature_info] == [
        ("conv1", 32, 1), ("conv2", 16, 2), ("deconv1", 32, 1)]  # fmt: skip


@pytest.mark.parametrize("name", [n for n in list_encoders() if n.startswith(("paper-cae", "cae"))])
def test_cae_initialisation_is_normal_002(name):
    torch.manual_seed(0)
    model = create_encoder(name)
    assert isinstance(model, ConvAutoEncoder)
    weights = torch.cat([m.weight.flatten() for m in model.modules() if isinstance(m, torch.nn.Conv2d)])
    biases = torch.cat([m.bias for m in model.modules() if isinstance(m, torch.nn.Conv2d)])
    assert weights.mean().abs() < 0.002 and weights.std().item() == pytest.approx(0.02, rel=0.05)
    assert torch.count_nonzero(biases) == 0


def test_paper_cae_output_is_tanh_of_last_conv():
    model = create_encoder("paper-cae").eval()
    x = torch.rand(1, 3, 11, 7) * 2 - 1
    with torch.no_grad():
        h = torch.relu(model.encoder[1](torch.relu(model.encoder[0](x))))
        h = torch.nn.functional.interpolate(h, size=(11, 7), mode="bilinear", align_corners=False)
        expected = torch.tanh(model.output(torch.relu(model.decoder[0](h))))
        assert torch.allclose(model(x), expected)


# -- daisy: the classical dense descriptor as a non-learned encoder ------------------------------
@pytest.mark.parametrize("stride, size", [(2, (17, 23)), (3, (16, 11)), (2, (1, 2)), (4, (9, 31))])
def test_daisy_covers_every_cell_of_the_grid(stride, size):
    model = create_encoder("daisy", stride=stride, radius=5)
    x = torch.rand(2, 3, *size) * 2 - 1
    maps = model.features(x)
    assert maps.shape == (2, 200, math.ceil(size[0] / stride), math.ceil(size[1] / stride))
    assert maps.dtype == x.dtype and torch.isfinite(maps).all()
    torch.testing.assert_close(maps.sum(dim=1), torch.ones(2, *maps.shape[-2:]))  # L1-normalised
    torch.testing.assert_close(maps[1], model.features(x[1:])[0])  # a batch is its images one by one


@pytest.mark.parametrize("stride", [2, 3])
def test_daisy_cell_centres_follow_the_grid(stride):
    """Cell (r, c) is skimage's descriptor centred at pixel (c s + (s - 1) // 2, r s + (s - 1) // 2)."""
    from skimage.feature import daisy

    radius, (h, w) = 5, (57, 63)
    margin = radius + 11  # beyond this, padding changes nothing (Gaussians of sigma <= 2.5, cut at 4 sigma)
    x = torch.rand(1, 3, h, w, dtype=torch.float64) * 2 - 1
    maps = create_encoder("daisy", stride=stride, radius=radius).features(x)[0].numpy()
    grey = np.einsum("chw,c->hw", (x[0].numpy() + 1) / 2, [0.2125, 0.7154, 0.0721]).astype(np.float32)
    reference = daisy(grey, step=1, radius=radius)  # centred at (radius + i, radius + j), no padding
    offset = (stride - 1) // 2
    checked = 0
    for r in range(maps.shape[1]):
        for c in range(maps.shape[2]):
            y, x_ = r * stride + offset, c * stride + offset
            if margin <= y < h - margin and margin <= x_ < w - margin:
                np.testing.assert_allclose(maps[:, r, c], reference[y - radius, x_ - radius], rtol=1e-4, atol=1e-7)
                checked += 1
    assert checked > 50


def test_daisy_ignores_brightness_gain_and_offset():
    model = create_encoder("daisy")
    unit = torch.rand(1, 3, 33, 29) * 0.6 + 0.2  # [0.2, 0.8]: no clipping below
    relit = unit * 1.25 - 0.1  # [0.15, 0.9]
    torch.testing.assert_close(model.features(relit * 2 - 1), model.features(unit * 2 - 1), rtol=1e-4, atol=1e-6)
    darker = model.features(unit.pow(2) * 2 - 1)  # a non-affine change is seen
    assert (darker - model.features(unit * 2 - 1)).abs().max() > 1e-4  # 100x the tolerance above


@pytest.mark.parametrize("args", [{"stride": 0}, {"radius": 0}, {"stride": 12, "radius": 5}])
def test_daisy_refuses_bad_options(args):
    with pytest.raises(FeatkitError, match="daisy needs"):
        create_encoder("daisy", **args)

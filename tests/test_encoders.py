"""Encoder contract, parametrized over the registry: every encoder, plugins included."""

from __future__ import annotations

import math

import pytest
import torch

from featkit.encoders import AutoEncoder, ConvAutoEncoder, create_encoder, list_encoders
from featkit.errors import UnknownNameError

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

"""The contract every registered loss keeps, plugins included: parametrized over the registry."""

from __future__ import annotations

import pytest
import torch

import featkit
from featkit.errors import ShapeError


def _pair(shape=(2, 3, 16, 20)):
    g = torch.Generator().manual_seed(1)
    return torch.rand(shape, generator=g) * 2 - 1, torch.rand(shape, generator=g) * 2 - 1


@pytest.fixture(params=featkit.list_losses())
def loss(request):
    return featkit.create_loss(request.param)


def test_returns_0dim_and_components(loss):
    output, target = _pair()
    value = loss(output, target)
    assert isinstance(value, torch.Tensor) and value.dim() == 0 and torch.isfinite(value)
    total, parts = loss.evaluate(output, target)
    assert torch.allclose(total, value)
    assert parts and all(v.dim() == 0 for v in parts.values())
    assert torch.allclose(total, sum(loss.weights[k] * v for k, v in parts.items()))


def test_zero_on_identical_inputs(loss):
    x = _pair()[0]
    assert abs(float(loss(x, x.clone()))) < 1e-6


def test_finite_gradient(loss):
    output, target = _pair()
    output.requires_grad_(True)
    loss(output, target).backward()
    assert torch.isfinite(output.grad).all() and output.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "output, target, message",
    [
        (torch.zeros(3, 8, 8), torch.zeros(3, 8, 8), r"\(N, C, H, W\)"),
        (torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 9), "same shape"),
        (torch.full((1, 3, 8, 8), float("nan")), torch.zeros(1, 3, 8, 8), "NaN"),
        (torch.zeros(1, 3, 8, 8), torch.tensor(float("inf")).expand(1, 3, 8, 8), "infinite"),
        (torch.zeros(1, 0, 8, 8), torch.zeros(1, 0, 8, 8), "channels"),
        (
            torch.zeros(1, 3, 8, 8, dtype=torch.int64),
            torch.zeros(1, 3, 8, 8, dtype=torch.int64),
            "floating",
        ),
    ],
    ids=["rank", "mismatch", "nan", "inf", "no-channels", "integer"],
)
def test_bad_input_is_a_shape_error(loss, output, target, message):
    with pytest.raises(ShapeError, match=message):
        loss(output, target)


def test_nan_hidden_by_overflow_is_still_found():
    """The fast finiteness check (a sum) must not be fooled; nor flag huge finite values."""
    loss = featkit.create_loss("pl")
    huge = torch.full((1, 3, 4, 4), 3e38)
    assert torch.isfinite(huge).all()
    with pytest.raises(ShapeError, match="NaN"):
        loss(huge.clone().index_put_((torch.tensor(0),), torch.tensor(float("nan"))), huge)
    loss(huge, huge)  # finite values whose sum overflows are accepted

"""featkit.runtime.devices: choosing the device and the layout batches reach the network in."""

from __future__ import annotations

import pytest
import torch

from featkit.runtime.devices import network_input, resolve_device
from featkit.encoders import create_encoder
from featkit.errors import FeatkitError
from tests.rounding import assert_rows_close


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(FeatkitError, match="unknown device 'gpu0'"):
        resolve_device("gpu0")


def test_network_input_changes_the_layout_not_the_values():
    x = torch.rand(2, 3, 9, 13) * 2 - 1
    y = network_input(x, torch.device("cpu"))
    assert y.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(x, y)
    torch.manual_seed(0)
    model = create_encoder("paper-cae")
    # oneDNN's channels-last kernels sum in another order (tests/rounding.py): paper-cae's four
    # 3 x 3 convolutions, of 27, 288, 144 and 288 terms.
    assert_rows_close(model(y).flatten(1).detach(), model(x).flatten(1).detach(), terms=27 + 288 + 144 + 288)

"""train(init=...): fine-tuning a shipped model or a run, recorded, resumed exactly."""

from __future__ import annotations

import json

import pytest
import torch

from featkit.runs.models import DEFAULT_MODEL, load_encoder
from featkit.runs.tensors import load_tensors
from featkit.training.config import TrainConfig, TrainConfigError
from featkit.training.loop import train


def _weights(run_dir):
    return load_tensors(run_dir / "model.safetensors")[0]


def test_a_run_started_from_the_shipped_model_begins_at_its_weights_and_records_it(fast_config, tmp_path):
    shipped, info = load_encoder(DEFAULT_MODEL)
    # a learning rate so small that Adam's steps (about lr each) leave the starting weights in place
    run = train(fast_config(init=DEFAULT_MODEL, epochs=1, lr=1e-9))
    config = json.loads((run / "config.json").read_text())
    assert config["init"] == {"model": DEFAULT_MODEL, "fingerprint": info["fingerprint"]}
    assert config["train"]["init"] == DEFAULT_MODEL and config["encoder"] == shipped.config
    weights, start = _weights(run), shipped.state_dict()
    assert all(torch.allclose(weights[k], start[k], atol=1e-7, rtol=0) for k in start)
    scratch = _weights(train(fast_config(out=str(tmp_path / "scratch"), epochs=1, lr=1e-9)))
    assert not torch.allclose(scratch["encoder.0.weight"], start["encoder.0.weight"], atol=1e-3)


def test_a_run_directory_as_init_is_recorded_by_its_path_and_resume_stays_exact(fast_config, tmp_path):
    base = train(fast_config(out=str(tmp_path / "base"), epochs=1))
    straight = train(fast_config(out=str(tmp_path / "a"), init=str(base), epochs=2, schedule="constant"))
    first = train(fast_config(out=str(tmp_path / "b"), init=str(base), epochs=1, schedule="constant"))
    resumed = train(TrainConfig(resume=str(first), epochs=2))
    a, b = _weights(straight), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)  # the same computation on one machine: bit-identical
    for run in (straight, resumed):
        config = json.loads((run / "config.json").read_text())
        assert config["init"]["model"] == str(base.resolve()) == config["train"]["init"]


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"init": "no-such-model"}, "neither a run directory nor a shipped model"),
        ({"init": DEFAULT_MODEL, "encoder": "cae-wide"}, "drop --encoder 'cae-wide'"),
    ],
)
def test_a_bad_init_is_named(fast_config, overrides, words):
    with pytest.raises(TrainConfigError, match=words):
        train(fast_config(**overrides))

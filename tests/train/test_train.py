"""train(): run-directory contents, metrics, exact resume, interruption, failures."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch
from torch import nn

from featkit.runs.checkpoint import CHECKPOINT_FILE, PREVIOUS_CHECKPOINT_FILE, load_checkpoint
from featkit.runs.models import load_model
from featkit.runs.tensors import load_tensors
from featkit.errors import ImageError, NonFiniteLossError, OutputExistsError
from featkit.losses import LOSSES, register_loss
from featkit.choices import PRESETS
from featkit.training.probe import PROBE_COMPONENTS
from featkit.training.config import TrainConfig, TrainConfigError
from featkit.training.loop import train


def _metrics(run_dir):
    with open(run_dir / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _weights(run_dir):
    return load_tensors(run_dir / "model.safetensors")[0]


def test_run_dir_contents(fast_config):
    run_dir = train(fast_config(recon_epochs=[2], loss="pl+sfl"))
    for name in ("config.json", "model.safetensors", "metrics.csv", "curves.png", "report.html", "summary.json",
                 "whitening.safetensors", CHECKPOINT_FILE, PREVIOUS_CHECKPOINT_FILE, "reconstructions/epoch_0002.png"):  # fmt: skip
        assert (run_dir / name).is_file(), name
    config = json.loads((run_dir / "config.json").read_text())
    assert config["encoder"] == {"name": "paper-cae", "args": {}}
    assert config["loss"]["spec"] == "pl+sfl" and config["loss"]["weights"]["sfl/0.8"] == 100.0
    assert config["preset"] == "standard" and config["train"]["optimizer"] == "adam" and config["train"]["epochs"] == 2
    assert config["data"]["images"] == 4 and config["data"]["skipped"] == []
    assert [f["name"] for f in config["feature_info"]] == ["conv1", "conv2", "deconv1"]
    rows = _metrics(run_dir)
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert list(rows[0]) == ["epoch", *PROBE_COMPONENTS, "contrast", "total", "lr", "seconds"]
    # total is the weighted sum of the unweighted bands (eq. 7 with weights 100/10/10) plus the
    # contrast term (weight 0.1 in the standard preset; chance level is ln 64)
    r = {k: float(v) for k, v in rows[-1].items()}
    bands = r["pl"] + 100 * r["sfl/0.8"] + 10 * r["sfl/1.6"] + 10 * r["sfl/3.2"]
    assert config["train"]["contrast"] == 0.1 and 0 < r["contrast"] < 4.5
    assert math.isclose(r["total"], bands + 0.1 * r["contrast"], rel_tol=1e-6)
    whitening = json.loads((run_dir / "summary.json").read_text())["whitening"]
    assert whitening["layer"] == "conv2" and whitening["window"] == 3 and whitening["dim"] == 128
    page = (run_dir / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and "src=\"http" not in page
    model, _ = load_model(run_dir)
    x = torch.rand(1, 3, 13, 17) * 2 - 1
    assert model(x).shape == x.shape
    assert model.whitening.dim == 128 and model.whitening.projection.shape == (144, 128)


def test_pl_run_still_logs_every_band(fast_config):
    run_dir = train(fast_config(loss="pl", epochs=1, contrast=0.0))
    row = _metrics(run_dir)[0]
    assert list(row) == ["epoch", *PROBE_COMPONENTS, "total", "lr", "seconds"]
    assert float(row["total"]) == pytest.approx(float(row["pl"]))
    assert all(float(row[n]) > 0 for n in PROBE_COMPONENTS)


def test_training_lowers_the_loss(fast_config):
    run_dir = train(fast_config(epochs=5, lr=1e-2, schedule="constant"))
    rows = _metrics(run_dir)
    assert float(rows[-1]["pl"]) < 0.7 * float(rows[0]["pl"])


def test_warmup_rises_linearly_then_the_schedule_starts(fast_config):
    run_dir = train(fast_config(epochs=4, warmup=2, lr=1e-2, batch_size=0, crop=0))  # one step per epoch
    lrs = [float(r["lr"]) for r in _metrics(run_dir)]
    assert lrs == pytest.approx([5e-3, 1e-2, 1e-2, 5e-3])  # 1/2, 2/2 of lr; then cosine over the last 2 steps
    with pytest.raises(TrainConfigError, match="warmup"):
        train(fast_config(epochs=2, warmup=2))


def test_resume_reads_runs_written_before_warmup_existed(fast_config, tmp_path):
    first = train(fast_config(out=str(tmp_path / "old"), epochs=1, schedule="constant"))
    config = json.loads((first / "config.json").read_text())
    del config["train"]["warmup"]
    (first / "config.json").write_text(json.dumps(config))
    resumed = train(TrainConfig(resume=str(first), epochs=2))
    assert json.loads((resumed / "config.json").read_text())["train"]["warmup"] == 0
    assert len(_metrics(resumed)) == 2


def test_resume_is_bit_identical(fast_config, tmp_path):
    straight = train(fast_config(out=str(tmp_path / "a"), epochs=4, schedule="constant"))
    first = train(fast_config(out=str(tmp_path / "b"), epochs=2, schedule="constant"))
    resumed = train(TrainConfig(resume=str(first), epochs=4))
    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [r["pl"] for r in _metrics(straight)] == [r["pl"] for r in _metrics(resumed)]
    assert json.loads((resumed / "config.json").read_text())["train"]["epochs"] == 4


def test_interrupt_mid_epoch_then_resume_is_bit_identical(fast_config, tmp_path):
    straight = train(fast_config(out=str(tmp_path / "a"), epochs=3))  # cosine schedule over 3 epochs

    def interrupt(p):
        if p.epoch == 2 and p.step == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(fast_config(out=str(tmp_path / "b"), epochs=3), on_step=interrupt)
    meta = load_checkpoint(tmp_path / "b")["meta"]
    assert (meta["epoch"], meta["step"]) == (1, 1)
    resumed = train(TrainConfig(resume=str(tmp_path / "b")))
    a, b = _weights(straight), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_never_overwrites(fast_config):
    run_dir = train(fast_config(epochs=1))
    with pytest.raises(OutputExistsError, match="--overwrite"):
        train(fast_config(epochs=1))
    before = (run_dir / "model.safetensors").stat().st_mtime_ns
    train(fast_config(epochs=1, overwrite=True, seed=1))
    assert (run_dir / "model.safetensors").stat().st_mtime_ns != before


def test_overwrite_refuses_a_folder_featkit_did_not_write(fast_config, tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(Exception, match="not a featkit run directory"):
        train(fast_config(out=str(foreign), overwrite=True))
    assert (foreign / "notes.txt").read_text() == "keep me"


class _NaNAtStep(nn.Module):
    """PL until the k-th call, then NaN."""

    def __init__(self, k: int = 3) -> None:
        super().__init__()
        self.k, self.calls = k, 0

    def forward(self, output, target):
        self.calls += 1
        value = (output - target).square().mean()
        return value * float("nan") if self.calls >= self.k else value


if "test-nan" not in LOSSES:
    register_loss("test-nan")(_NaNAtStep)


def test_nan_stops_the_run_and_keeps_the_good_checkpoint(fast_config):
    # 8 windows / 3 per step = 3 steps per epoch, one batch per step: call 5 is epoch 2, step 2
    config = fast_config(loss="test-nan", epochs=3, loss_options={"k": 5})
    with pytest.raises(NonFiniteLossError, match=r"'test-nan' \(from module [\w.]+\) became nan at epoch 2, step 2 \(step 5 overall\)"):
        train(config)
    state = load_checkpoint(config.out)  # finite, else load_tensors raises
    assert state["meta"]["epoch"] == 1


def test_checkpoint_refuses_non_finite_weights(fast_config):
    from featkit.runs.tensors import save_tensors
    from featkit.errors import CheckpointError

    with pytest.raises(CheckpointError, match="NaN"):
        save_tensors(fast_config().out + ".safetensors", {"w": torch.tensor([1.0, float("inf")])})


@pytest.fixture
def messy_folder(tiny_folder, tmp_path):
    folder = tmp_path / "messy"
    folder.mkdir()
    for i, src in enumerate(sorted(tiny_folder.rglob("*.png"))[:2]):
        (folder / f"ok{i}.png").write_bytes(src.read_bytes())
    (folder / "notes.png").write_text("not an image")
    good = (folder / "ok0.png").read_bytes()
    (folder / "cut.png").write_bytes(good[: len(good) // 2])
    return folder


def test_bad_files_are_skipped_and_recorded(fast_config, messy_folder):
    run_dir = train(fast_config(data=str(messy_folder), epochs=1))
    config = json.loads((run_dir / "config.json").read_text())
    skipped = {s["path"].rsplit("/", 1)[-1]: s["reason"] for s in config["data"]["skipped"]}
    assert set(skipped) == {"notes.png", "cut.png"} and config["data"]["images"] == 2
    assert "not an image" in skipped["notes.png"] and skipped["cut.png"]


def test_strict_fails_before_training_naming_every_bad_file(fast_config, messy_folder):
    config = fast_config(data=str(messy_folder), strict=True)
    with pytest.raises(ImageError, match="2 file") as info:
        train(config)
    assert "notes.png" in str(info.value) and "cut.png" in str(info.value)
    assert not (messy_folder.parent / "run").exists()


@pytest.mark.parametrize(
    "override, words",
    [({"preset": "slow"}, "unknown preset"), ({"lr": -1.0}, "lr"), ({"optimizer": "lbfgs"}, "optimizer"),
     ({"momentum": 1.5}, "momentum"), ({"epochs": 0}, "epochs"), ({"contrast": -1.0}, "contrast")],
)  # fmt: skip
def test_bad_settings_are_named(fast_config, override, words):
    with pytest.raises(TrainConfigError, match=words):
        train(fast_config(**override))


def test_paper_preset_matches_section_4():
    c = TrainConfig(preset="paper").resolved()
    assert (c.optimizer, c.lr, c.momentum, c.batch_size, c.crop, c.epochs) == ("sgd", 0.02, 0.5, 0, 0, 2000)
    assert TrainConfig(preset="paper", lr=0.1).resolved().lr == 0.1


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_trains_and_is_recorded(tiny_folder, tmp_path, preset):
    config = TrainConfig(data=str(tiny_folder), out=str(tmp_path / preset), preset=preset, epochs=1, recon_epochs=[],
                         device="cpu")  # fmt: skip
    stored = json.loads((train(config) / "config.json").read_text())
    assert stored["preset"] == preset
    assert {k: stored["train"][k] for k in PRESETS[preset] if k != "epochs"} == {
        k: v for k, v in PRESETS[preset].items() if k != "epochs"
    }


def test_resume_refuses_changed_images(fast_config, tiny_folder, tmp_path):
    import shutil

    from featkit.errors import CheckpointError

    folder = tmp_path / "imgs"
    shutil.copytree(tiny_folder, folder)
    run_dir = train(fast_config(data=str(folder), epochs=1))
    shutil.copy(next(folder.rglob("*.png")), folder / "extra.png")
    with pytest.raises(CheckpointError, match="1 added"):
        train(TrainConfig(resume=str(run_dir), epochs=2))

"""Training under faults: corrupt checkpoints, kill -9 at random moments, a NaN plugin, and
a folder full of bad files. Nothing is lost, nothing non-finite is saved, resume is exact."""

from __future__ import annotations

import dataclasses
import json
import random
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
from PIL import Image

from featkit.runs.checkpoint import CHECKPOINT_FILE, PREVIOUS_CHECKPOINT_FILE, load_checkpoint
from featkit.runs.models import WEIGHTS_FILE, load_model
from featkit.runs.tensors import load_tensors
from featkit.cli import main
from featkit.errors import CheckpointError, FeatkitWarning
from featkit.training.config import TrainConfig
from featkit.training.loop import train
from tests.robustness.faults import good_crops, make_fault_folder


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("photos")
    for i, crop in enumerate(good_crops(6, size=32)):
        crop.save(root / f"p{i}.png")
    return root


def _config(photos: Path, out: Path, **overrides) -> TrainConfig:
    base = TrainConfig(data=str(photos), out=str(out), epochs=4, crop=16, batch_size=4, crops_per_image=2,
                       epoch_windows=0, recon_images=1, recon_epochs=[], device="cpu", seed=3)  # fmt: skip
    return dataclasses.replace(base, **overrides)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_tensors(run / WEIGHTS_FILE)[0]


def _same_weights(a: Path, b: Path) -> bool:
    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.fixture(scope="module")
def reference(photos, tmp_path_factory) -> Path:
    """An uninterrupted 4-epoch run."""
    return train(_config(photos, tmp_path_factory.mktemp("ref") / "run"))


class _StopAfterEpoch3(Exception):
    pass


def _stop_after_epoch_3(progress) -> None:
    if progress.epoch_done and progress.epoch == 3:
        raise _StopAfterEpoch3


def _flip_byte(path: Path, offset_from_end: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[-offset_from_end] ^= 0x5A
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["bit-flip", "truncate"])
def test_corrupt_newest_checkpoint_falls_back_to_previous_with_a_warning(photos, tmp_path, reference, damage, capsys):
    run = tmp_path / "run"
    with pytest.raises(_StopAfterEpoch3):
        train(_config(photos, run), on_step=_stop_after_epoch_3)  # a 4-epoch run, cut after epoch 3
    newest = run / CHECKPOINT_FILE
    if damage == "bit-flip":
        _flip_byte(newest)
    else:
        newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    with pytest.warns(FeatkitWarning, match=CHECKPOINT_FILE):
        assert load_checkpoint(run)["meta"]["epoch"] == 2
    code = main(["train", "--resume", str(run), "--epochs", "4", "--quiet"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "warning:" in err and PREVIOUS_CHECKPOINT_FILE in err and "Traceback" not in err
    assert _same_weights(run, reference)


def test_both_checkpoints_corrupt_is_a_one_line_error(photos, tmp_path, capsys):
    run = train(_config(photos, tmp_path / "run", epochs=2))
    _flip_byte(run / CHECKPOINT_FILE)
    (run / PREVIOUS_CHECKPOINT_FILE).write_bytes(b"")
    assert main(["train", "--resume", str(run), "--epochs", "3", "--quiet"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and CHECKPOINT_FILE in lines[0]


def test_bit_flipped_model_weights_are_refused_naming_the_file(photos, tmp_path, capsys):
    run = train(_config(photos, tmp_path / "run", epochs=1))
    _flip_byte(run / WEIGHTS_FILE, offset_from_end=7)
    with pytest.raises(CheckpointError, match=WEIGHTS_FILE):
        load_model(run)
    code = main(["extract", str(photos), "-m", str(run), "-o", str(tmp_path / "f.npy"), "--quiet"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and WEIGHTS_FILE in lines[0]


_SLOW_SAVES = (
    "import sys, time, featkit.runs.tensors as c\n"
    "save = c.save_file\n"
    "def slow(tensors, path, metadata=None):\n"
    "    save(tensors, path, metadata=metadata)\n"
    "    time.sleep(0.15)  # widen the window in which a kill lands mid-checkpoint-write\n"
    "c.save_file = slow\n"
    "from featkit.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def _train_args(photos: Path, run: Path) -> list[str]:
    """The CLI form of :func:`_config` (4 epochs)."""
    return ["train", str(photos), "--out", str(run), "--epochs", "4", "--crop", "16", "--batch-size", "4",
            "--crops-per-image", "2", "--epoch-windows", "0", "--seed", "3", "--device", "cpu", "--quiet"]  # fmt: skip


def test_kill_9_at_random_moments_then_resume_gives_the_uninterrupted_weights(photos, tmp_path):
    # The reference runs in a process of its own too: same thread count, same arithmetic.
    reference = tmp_path / "reference"
    done = subprocess.run([sys.executable, "-m", "featkit", *_train_args(photos, reference)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    run = tmp_path / "run"
    args = _train_args(photos, run)
    rng = random.Random(11)
    kills = 0
    for attempt in range(8):
        if (run / CHECKPOINT_FILE).exists():
            cmd_args = ["train", "--resume", str(run), "--quiet"]
        else:  # killed before the first checkpoint: nothing to resume, start again
            cmd_args = [*args, "--overwrite"] if run.exists() else args
        cmd = [sys.executable, "-c", _SLOW_SAVES, *cmd_args]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if attempt < 3:
            time.sleep(rng.uniform(3.0, 6.0))  # interpreter start-up is ~3 s; training is short
            if proc.poll() is None:
                proc.kill()
                kills += 1
        _, err = proc.communicate()
        if proc.returncode == 0:
            break
        assert proc.returncode == -9, err
    assert proc.returncode == 0, err
    assert kills >= 1
    assert _same_weights(run, reference)
    leftovers = [p.name for p in run.rglob(".*")]
    assert not leftovers, leftovers


def test_nan_plugin_stops_at_step_5_naming_it_and_checkpoints_stay_usable(photos, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["--plugin", "tests.robustness.nan_plugin", "train", str(photos), "--out", str(run), "--loss", "pl+nan-at-5",
            "--epochs", "4", "--crop", "16", "--batch-size", "4", "--crops-per-image", "2", "--epoch-windows", "0",
            "--device", "cpu", "--quiet"]  # fmt: skip
    # 6 photos x 2 crops in batches of 4: 3 steps per epoch, so step 5 is epoch 2, step 2.
    assert main(args) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, errors
    assert "nan-at-5" in errors[0] and "epoch 2, step 2" in errors[0] and "step 5 overall" in errors[0], errors
    assert "module tests.robustness.nan_plugin" in errors[0]
    for name in (CHECKPOINT_FILE, WEIGHTS_FILE):
        tensors, _ = load_tensors(run / name)  # raises if anything is non-finite
        assert all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point())
    assert load_checkpoint(run)["meta"]["epoch"] == 1
    # The plugin fails only on its 5th call, so the resumed run goes past step 5.
    assert main(["--plugin", "tests.robustness.nan_plugin", "train", "--resume", str(run), "--quiet"]) == 0
    assert load_checkpoint(run)["meta"]["epoch"] == 4


@pytest.fixture(scope="module")
def fault_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults100")
    return root, make_fault_folder(root, n_good=100)


def test_train_and_extract_complete_on_a_faulty_folder_and_list_what_was_skipped(fault_folder, tmp_path):
    root, names = fault_folder
    run = tmp_path / "run"
    code = subprocess.run(
        [sys.executable, "-m", "featkit", "train", str(root), "--out", str(run), "--epochs", "1", "--crop", "16",
         "--batch-size", "32", "--crops-per-image", "1", "--device", "cpu", "--quiet"],  # fmt: skip
        capture_output=True, text=True,
    )
    assert code.returncode == 0, code.stderr
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    assert peak_mib < 2048, f"training peaked at {peak_mib:.0f} MiB: a bomb was decoded?"
    config = json.loads((run / "config.json").read_text())
    text = json.dumps(config)
    for bad in names["bad"]:
        assert bad in text, f"{bad} not listed as skipped"
    feats = tmp_path / "f.npy"
    assert main(["extract", str(root), "-m", str(run), "-o", str(feats), "--workers", "0", "--quiet"]) == 0
    manifest = json.loads(feats.with_suffix(".json").read_text())
    assert sorted(Path(s["path"]).name for s in manifest["skipped"]) == names["bad"]
    assert len(manifest["items"]) == len(names["good"]) + len(names["odd"])


def test_strict_stops_before_training_naming_every_bad_file(fault_folder, tmp_path, capsys):
    root, names = fault_folder
    run = tmp_path / "run"
    code = main(["train", str(root), "--out", str(run), "--epochs", "1", "--strict", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    for bad in names["bad"]:
        assert bad in err
    assert not (run / CHECKPOINT_FILE).exists() and not (run / WEIGHTS_FILE).exists()

"""`featkit train`: help, one-line errors, exit codes, Ctrl-C, and torchrun data parallelism."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from featkit.runs.checkpoint import CHECKPOINT_FILE
from featkit.runs.tensors import load_tensors
from featkit.cli import main
from tests.rounding import assert_weights_close

SMALL = ["--epochs", "2", "--crop", "16", "--batch-size", "4", "--crops-per-image", "2", "--epoch-windows", "0", "--device", "cpu"]


def test_help_names_the_options(capsys):
    assert main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--loss", "--encoder", "--epochs", "--out", "--preset", "--resume", "--max-side", "--strict"):
        assert option in out


def test_missing_folder_is_one_line_error(capsys, tmp_path):
    assert main(["train", str(tmp_path / "missing_dir"), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "missing_dir" in err[0]
    assert not (tmp_path / "run").exists()


def test_unknown_loss_is_one_line_error(capsys, tiny_folder, tmp_path):
    assert main(["train", str(tiny_folder), "--loss", "pl+nope", "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope" in err[0] and "Available loss" in err[0]


def test_resume_with_folder_is_usage_error(tiny_folder, tmp_path):
    assert main(["train", str(tiny_folder), "--resume", str(tmp_path)]) == 2


def test_quiet_run_logs_epochs_and_prints_the_report(capsys, tiny_folder, tmp_path):
    assert main(["train", str(tiny_folder), "--out", str(tmp_path / "run"), "--quiet", *SMALL]) == 0
    captured = capsys.readouterr()
    assert "epoch 1/2" in captured.err and "sfl/0.8=" in captured.err
    assert f"report: {tmp_path / 'run' / 'report.html'}" in captured.out
    assert main(["train", str(tiny_folder), "--out", str(tmp_path / "run"), "--quiet", *SMALL]) == 1
    assert "already exists" in capsys.readouterr().err


def test_contrast_flag_sets_the_term_and_a_negative_weight_is_refused(capsys, tiny_folder, tmp_path):
    assert main(["train", str(tiny_folder), "--out", str(tmp_path / "off"), "--quiet", *SMALL, "--contrast", "0"]) == 0
    assert json.loads((tmp_path / "off" / "config.json").read_text())["train"]["contrast"] == 0.0
    assert "contrast" not in (tmp_path / "off" / "metrics.csv").read_text().splitlines()[0]
    assert (tmp_path / "off" / "whitening.safetensors").is_file()  # the readout is fitted either way
    assert "contrast=" not in capsys.readouterr().err
    assert main(["train", str(tiny_folder), "--out", str(tmp_path / "neg"), "--quiet", *SMALL, "--contrast", "-1"]) == 2
    assert not (tmp_path / "neg").exists()
    assert main(["train", str(tiny_folder), "--out", str(tmp_path / "tilt"), "--quiet", *SMALL, "--contrast", "0.1",
                 "--contrast-perspective", "0.3"]) == 0  # fmt: skip
    assert json.loads((tmp_path / "tilt" / "config.json").read_text())["train"]["contrast_perspective"] == 0.3
    assert main(["train", str(tiny_folder), "--out", str(tmp_path / "far"), "--quiet", *SMALL,
                 "--contrast-perspective", "0.5"]) == 2  # fmt: skip


def test_ctrl_c_saves_a_checkpoint_and_exits_130(capsys, monkeypatch, tiny_folder, tmp_path):
    from featkit.training.trainer import Trainer

    real_step = Trainer.finish_step
    calls = []

    def step_then_interrupt(self, sums, planned, lr):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_step(self, sums, planned, lr)

    monkeypatch.setattr(Trainer, "finish_step", step_then_interrupt)
    run_dir = tmp_path / "run"
    assert main(["train", str(tiny_folder), "--out", str(run_dir), "--quiet", *SMALL]) == 130
    assert "--resume" in capsys.readouterr().err
    assert (run_dir / CHECKPOINT_FILE).is_file()
    monkeypatch.setattr(Trainer, "finish_step", real_step)
    assert main(["train", "--resume", str(run_dir), "--quiet"]) == 0
    assert (run_dir / "report.html").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("source", ["folder", "shards"])
def test_torchrun_two_processes_match_one(tiny_folder, tmp_path, source):
    """Streamed from a folder (rank r takes every other window of a step) or from two tar
    shards (rank r reads only shard r), two processes give the weights of one."""
    # A process killed by a signal prints its Python stacks, shown on failure below.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"}
    images = str(tiny_folder)
    if source == "shards":
        from featkit.data.shard_writer import write_shards

        images = write_shards(tiny_folder, tmp_path / "shards", max_count=2)["pattern"]
    # 12 windows: 3 steps of 4. The contrast term draws its warps per process and batch, so
    # only the reconstruction objective is the same update. Each process sums the gradient of
    # its own windows and all_reduce adds the two: another order than one process's sums, so
    # the weights agree to float32 rounding (SGD, see tests/rounding.py), not bit for bit. At the
    # paper's learning rate the 6 steps move the weights by 2-3 % of each tensor's largest
    # weight, over ten times the rounding bound below.
    args = [images, *SMALL, "--quiet", "--crops-per-image", "3", "--contrast", "0", "--optimizer", "sgd", "--lr", "0.02"]
    single = subprocess.run([sys.executable, "-m", "featkit", "train", *args, "--out", str(tmp_path / "one")],
                            env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert single.returncode == 0, single.stderr
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    double = subprocess.run([*launcher, "-m", "featkit", "train", *args, "--out", str(tmp_path / "two")],
                            env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    # torchrun's own report ends stderr; what the processes printed comes before it.
    assert double.returncode == 0, double.stderr[:6000] + "\n...\n" + double.stderr[-1500:]
    a = load_tensors(tmp_path / "one" / "model.safetensors")[0]
    b = load_tensors(tmp_path / "two" / "model.safetensors")[0]
    # 6 steps; a weight's gradient sums over the step's 4 x 16 x 16 window pixels, after the
    # backward pass's reductions through four 3 x 3 convolutions of at most 288 terms each
    assert_weights_close(b, a, terms=4 * 16 * 16 + 4 * 288, steps=6)
    assert any(not torch.equal(a[k], torch.zeros_like(a[k])) for k in a)
    assert json.loads((tmp_path / "two" / "config.json").read_text())["world_size"] == 2

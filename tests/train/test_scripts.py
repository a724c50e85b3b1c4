"""The benchmark and the paper-reproduction example run end to end (tiny settings)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from tests.scripts import ROOT, load_script


@pytest.mark.slow
def test_bench_quick_prints_ratios():
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_train.py"), "--quick"],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "speed-up featkit / naive:" in proc.stdout and "of matmul peak" in proc.stdout
    assert "largest relative loss difference" in proc.stdout


@pytest.mark.slow
def test_reproduce_example_prints_the_table(tiny_folder, tmp_path, capsys):
    module = load_script(ROOT / "examples" / "reproduce_paper.py")
    out = tmp_path / "repro"
    argv = [str(tiny_folder), "--out", str(out), "--epochs", "1", "--max-side", "32", "--device", "cpu"]
    assert module.main(argv) == 0
    printed = capsys.readouterr().out
    assert "| sfl/0.8 | 18.9e-3 | 7.08e-3 | 2.67x |" in printed
    result = json.loads((out / "results.json").read_text())
    assert set(result["final"]) == {"pl", "pl+sfl"} and (out / "reconstructions.png").is_file()
    assert result["settings"]["max_side"] == 32


def test_reproduce_resume_reuses_finished_runs_and_extends_the_rest(fast_config, tmp_path):
    from featkit.errors import CheckpointError
    from featkit.io import read_json
    from featkit.training.reproduce import reproduce
    from featkit.training.loop import train

    out = tmp_path / "repro"
    config = fast_config(epochs=2, out=None)
    finished = train(dataclasses.replace(config, loss="pl", out=str(out / "pl"), max_side=32))
    before = (finished / "model.safetensors").read_bytes()
    train(dataclasses.replace(config, loss="pl+sfl", out=str(out / "pl+sfl"), max_side=32, epochs=1))

    result = reproduce(out, config=config, max_side=32, resume=True)
    assert (finished / "model.safetensors").read_bytes() == before  # reused, not retrained
    assert read_json(out / "pl+sfl" / "summary.json")["epochs"] == 2  # continued to the wanted epochs
    assert set(result["ratios"]) == {"pl", "sfl/0.8", "sfl/1.6", "sfl/3.2"}

    with pytest.raises(CheckpointError, match="other settings .*lr"):
        reproduce(out, config=dataclasses.replace(config, lr=0.5), max_side=32, resume=True)

    (out / "pl" / "config.json").write_text("not json")
    with pytest.raises(CheckpointError, match="unreadable .*config.json"):
        reproduce(out, config=config, max_side=32, resume=True)

"""The digits example and the benchmark run (tiny versions): they finish and print their tables."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.scripts import ROOT, load_script


@pytest.mark.slow
def test_digits_example_tiny(capsys):
    example = load_script(ROOT / "examples" / "digits_features.py")
    assert example.main(["--per-class", "6", "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    for row in ("trained CAE", "random-init CAE", "raw pixels", "mAP", "NMI"):
        assert row in out


@pytest.mark.slow
def test_bench_quick_prints_ratios():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_extract.py"), "--quick"],
        capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},  # spin-waiting threads on shared CI
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if not line.startswith(" ")]
    assert [line.split()[0] for line in lines] == ["extract", "readout", "match", "search", "ivfpq"]
    assert all("ratio" in lines[i] for i in (0, 3, 4)) and "same rows: True" in lines[0]
    assert "pooled / raw" in lines[1] and "daisy" in lines[2] and "--keypoints log" in proc.stdout
    assert "recall@10" in lines[3] and "peak RSS" in lines[4]
    assert "no extractor exceeds" in proc.stdout  # the bound the machine sets

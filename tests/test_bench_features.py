"""bench/bench_features.py --quick runs end to end: every row and column, finite numbers, the targets."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest

from tests.scripts import ROOT

COLUMNS = ["MMA@1", "MMA@3", "MMA@5", "inst mAP", "inst R@1", "dig mAP", "dig NMI", "train s"]
ROWS = ["default recipe", "paper-cae pl+sfl, no contrast", "paper-cae pl, no contrast", "default recipe, loss pl", "random init",
        "shipped featkit-cae", "shipped featkit-cae, fine-tuned", "pixels", "daisy", "gap to daisy (default recipe - daisy)"]  # fmt: skip


@pytest.mark.slow
def test_bench_features_quick_prints_the_table(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_features.py"), "--quick", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = [[c.strip() for c in line.strip("|").split("|")] for line in proc.stdout.splitlines() if line.startswith("|")]
    assert table[0] == ["features", *COLUMNS] and set(table[1]) == {"---"}
    assert [row[0] for row in table[2:]] == ROWS
    for row in table[2:]:
        assert len(row) == 1 + len(COLUMNS), row
        assert all(math.isfinite(float(cell.split()[0])) for cell in row[1:]), row
    targets = [line for line in proc.stdout.splitlines() if line.startswith("target ")]
    assert len(targets) == 7 and all(line.endswith((": met", ": not met")) for line in targets)
    assert "same settings, same runs" not in proc.stdout  # the recipe adds the contrast term to the paper's CAE

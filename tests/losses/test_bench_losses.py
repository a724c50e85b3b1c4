"""bench/bench_losses.py runs end to end (a smoke run: timings are not asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_losses.py"


def test_bench_quick_prints_ratio_lines():
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "ratio pl+sfl / pl = " in out
    assert "ratio dense conv2d / sfl = " in out
    assert "ratio spatial-frequency-loss / sfl-dog = " in out or "(c) sfl-dog: skipped" in out

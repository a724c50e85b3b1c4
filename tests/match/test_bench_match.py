"""bench/bench_match.py --quick runs end to end and prints its table (values are not asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_match.py"


@pytest.mark.slow
def test_bench_match_quick(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--out", str(tmp_path)], capture_output=True, text=True, check=False, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("model"))
    assert "MMA@1" in lines[header] and "MMA@3" in lines[header] and "MMA@5" in lines[header]
    rows = [line.split()[0] for line in lines[header + 2 : header + 6]]
    assert rows == ["pl+sfl", "pl", "random", "pixels"]
    assert (tmp_path / "results.json").is_file()
    assert (tmp_path / "runs").is_dir() and len(list((tmp_path / "runs").iterdir())) == 2

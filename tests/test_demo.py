"""``examples/demo.py`` (what ``make demo`` runs) writes one report.html showing the whole job."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.scripts import ROOT

DEMO = ROOT / "examples" / "demo.py"
#: One thread: the quick demo is small, and the test suite shares the machine.
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def run_demo(*args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(DEMO), *args], capture_output=True, text=True, timeout=timeout,
                          env=ENV, cwd=ROOT)  # fmt: skip


def table_rows(page: str) -> dict[str, list[str]]:
    """The baseline table's rows: first cell (the features) -> the other cells."""
    table = re.search(r"<table id='baseline-table'>(.*?)</table>", page, re.S).group(1)
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", table, re.S):
        cells = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)]
        rows[cells[0]] = cells[1:]
    return rows


@pytest.mark.slow
def test_quick_demo_writes_one_report_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "demo"
    proc = run_demo("--quick", "--out", str(out), timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = out / "report.html"
    assert proc.stdout.strip().splitlines()[-1] == str(report)
    assert "[5/5] daisy" in proc.stdout  # progress lines

    page = report.read_text()
    assert page.count("data:image/png;base64,") >= 20  # curves, reconstructions, thumbnails, matches
    for section in ("training", "neighbours", "clusters", "matches", "baselines"):
        assert f"id='{section}'" in page
    assert page.count("class='row'") >= 4 + 2  # a row per query, at least two clusters
    assert "run/report.html" in page and (out / "run" / "report.html").is_file()

    rows = table_rows(page)
    head = rows.pop("features")
    assert head == ["R@1", "mean rank", "MMA@1", "MMA@3", "MMA@5", "inliers", "matches"]
    assert set(rows) == {"trained (default recipe)", "random init (paper-cae, seeded)", "pixels", "daisy"}
    for cells in rows.values():
        values = [float(c) for c in cells]
        assert 0 <= values[0] <= 1 and values[1] >= 1 and all(0 <= v <= 1 for v in values[2:5])
    results = json.loads((out / "results.json").read_text())
    assert results["table"]["daisy"]["MMA@3"] == pytest.approx(float(rows["daisy"][3]), abs=1e-3)

    again = run_demo("--quick", "--out", str(out), timeout=60)
    assert again.returncode != 0
    assert again.stderr.strip().count("\n") == 0 and "already exists" in again.stderr
    assert "Traceback" not in again.stderr and report.read_text() == page


def test_help_describes_the_options():
    proc = run_demo("--help", timeout=60)
    assert proc.returncode == 0
    assert "--out" in proc.stdout and "--quick" in proc.stdout

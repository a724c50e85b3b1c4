"""Installed plugins are discovered through entry points; a broken one does not stop the others."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A folder holding featkit-ffl (installed by pip) and a plugin whose module is missing."""
    root = tmp_path_factory.mktemp("plugins")
    source = root / "featkit-ffl"  # build from a copy: setuptools writes build files in-tree
    shutil.copytree(
        REPO / "plugins" / "featkit-ffl",
        source,
        ignore=shutil.ignore_patterns("tests", "build", "*.egg-info"),
    )
    target = root / "site"
    pip = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
    ]
    subprocess.run(
        [*pip, "--target", str(target), str(source)], check=True, capture_output=True, text=True
    )
    broken = target / "featkit_broken-0.1.dist-info"
    broken.mkdir()
    (broken / "METADATA").write_text("Metadata-Version: 2.1\nName: featkit-broken\nVersion: 0.1\n")
    (broken / "entry_points.txt").write_text(
        "[featkit.losses]\nbroken = featkit_broken_missing:factory\n"
    )
    return target


def _run(site: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, cwd=site
    )


def test_featkit_losses_lists_installed_plugin_and_reports_broken_one(site):
    proc = _run(site, "-m", "featkit", "losses")
    assert proc.returncode == 0, proc.stderr
    line = next(line for line in proc.stdout.splitlines() if " ffl " in f" {line} ")
    assert "plugin featkit-ffl" in line and "Focal frequency loss" in line
    assert "sfl-dog" in proc.stdout  # the built-ins are still there
    assert "broken" in proc.stderr and "featkit_broken_missing" in proc.stderr


def test_create_loss_with_installed_plugin(site):
    code = (
        "import torch, featkit\n"
        "from featkit.losses import LOSSES\n"
        "loss = featkit.create_loss('pl+ffl')\n"
        "x, y = torch.rand(2, 3, 12, 10) * 2 - 1, torch.rand(2, 3, 12, 10) * 2 - 1\n"
        "total, parts = loss.evaluate(x, y)\n"
        "assert sorted(parts) == ['ffl', 'pl'] and total.dim() == 0 and float(parts['ffl']) > 0\n"
        "print(sorted(LOSSES.plugin_errors), LOSSES.get('ffl').source)\n"
    )
    proc = _run(site, "-c", code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['broken'] plugin featkit-ffl"

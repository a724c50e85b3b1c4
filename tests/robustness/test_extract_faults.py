"""Extraction under faults: killed mid-write, disk full. Outputs already present stay
byte-identical, nothing partial appears under a final name, and --resume completes."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
import types
import shutil as real_shutil

import pytest

import featkit.features.partial as partial_run
from featkit.cli import main
from featkit.features.extraction import extract
from featkit.features.files import load_features
from tests.robustness.faults import good_crops
from tests.rounding import assert_rows_close


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    for i, crop in enumerate(good_crops(60, size=48)):
        crop.save(root / f"p{i:03d}.png")
    return root


@pytest.fixture()
def earlier_output(tmp_path, photos):
    """A finished extraction that later faults must leave byte-identical."""
    out = tmp_path / "earlier.npy"
    extract(photos, "pixels", out, workers=0)
    return out, out.read_bytes(), out.with_suffix(".json").read_bytes()


def _unchanged(earlier) -> bool:
    out, data, manifest = earlier
    return out.read_bytes() == data and out.with_suffix(".json").read_bytes() == manifest


def _final_names(folder):
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def test_disk_full_while_appending_rows(tmp_path, photos, earlier_output, monkeypatch, capsys):
    out = tmp_path / "feats.npy"
    original_add = partial_run.PartialRun.add
    calls = {"n": 0}

    def add_until_full(self, record, rows):
        calls["n"] += 1
        if calls["n"] > 7:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.dir))
        return original_add(self, record, rows)

    monkeypatch.setattr(partial_run.PartialRun, "add", add_until_full)
    code = main(["extract", str(photos), "-m", "pixels", "-o", str(out), "--workers", "0", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and "No space left on device" in err[0] and "Traceback" not in err[0]
    assert not out.exists() and not out.with_suffix(".json").exists()
    assert _final_names(tmp_path) == ["earlier.json", "earlier.npy"]
    assert _unchanged(earlier_output)

    monkeypatch.setattr(partial_run.PartialRun, "add", original_add)
    manifest = extract(photos, "pixels", out, workers=0, resume=True)
    fresh = tmp_path / "fresh.npy"
    extract(photos, "pixels", fresh, workers=0)
    assert manifest["rows"] == 60
    # The resumed part is batched otherwise than the fresh run (tests/rounding.py): the pixels
    # baseline averages 4 x 4 pixels per cell, then at most 12 x 12 cells per thumbnail value.
    assert_rows_close(load_features(out)[0], load_features(fresh)[0], terms=16 + 12 * 12)
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir()), "stray partial or temp files"


def test_disk_full_while_writing_the_final_file(tmp_path, photos, earlier_output, monkeypatch):
    out = tmp_path / "feats.npy"

    def copy_until_full(src, dst, length=0):
        dst.write(src.read(100))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    fake = types.SimpleNamespace(copyfileobj=copy_until_full, rmtree=real_shutil.rmtree)
    monkeypatch.setattr(partial_run, "shutil", fake)
    with pytest.raises(OSError) as info:
        extract(photos, "pixels", out, workers=0)
    assert info.value.errno == errno.ENOSPC
    assert not out.exists(), "a partial file appeared under the final name"
    assert _unchanged(earlier_output)

    monkeypatch.setattr(partial_run, "shutil", real_shutil)
    manifest = extract(photos, "pixels", out, workers=0, resume=True)
    assert manifest["rows"] == 60 and load_features(out)[0].shape[0] == 60


def test_kill_9_mid_extraction_then_resume(tmp_path, photos, earlier_output):
    out = tmp_path / "feats.npy"
    partial = tmp_path / ".feats.npy.partial"
    # Dense single-cell descriptors of a wide layer: 128 numbers per pixel, big enough rows that
    # the kill lands between writes (3 x 3 windows would make it 1152 and the files 9x larger).
    args = ["extract", str(photos), "-m", "cae-wide", "--layer", "conv1", "--pool", "none", "--window", "1",
            "-o", str(out), "--workers", "0", "--batch-size", "1", "--quiet", "--device", "cpu"]  # fmt: skip
    # Checkpoint after every image and slow each batch down, so the kill lands mid-run.
    slowed = (
        "import sys, time, featkit.features.extraction as e, featkit.features.partial as p\n"
        "p.CHECKPOINT_EVERY_S = 0.0\n"
        "encode = e.encode_images\n"
        "def slow(*a, **k):\n"
        "    time.sleep(0.1)\n"
        "    return encode(*a, **k)\n"
        "e.encode_images = slow\n"
        "from featkit.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", slowed, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    log = partial / "done.jsonl"
    while time.monotonic() < deadline and proc.poll() is None:
        if log.exists() and len(log.read_bytes().splitlines()) >= 10:  # ten files finished
            break
        time.sleep(0.05)
    time.sleep(0.3)
    if proc.poll() is not None:
        pytest.skip("extraction finished before it could be killed (machine too fast for this case)")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert partial.is_dir()
    assert not out.exists() and not out.with_suffix(".json").exists()
    assert _unchanged(earlier_output)

    resumed = subprocess.run([sys.executable, "-m", "featkit", *args, "--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    fresh = tmp_path / "fresh.npy"
    extract(photos, "cae-wide", fresh, layer="conv1", pool="none", window=1, workers=0, batch_size=1)
    # Another process, so maybe other thread counts (tests/rounding.py): conv1's 27-term sums,
    # then each cell's L2 norm over its 128 channels.
    assert_rows_close(load_features(out)[0], load_features(fresh)[0], terms=27 + 128)
    assert not partial.exists()

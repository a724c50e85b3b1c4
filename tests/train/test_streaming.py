"""Training streams its images: any source gives the same run, full batches accumulate over
bounded loads, and memory does not grow with the number of images."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import featkit.data.windows
from featkit.runs.tensors import load_tensors
from featkit.data.images import find_images
from featkit.data.samples import sample_images
from featkit.training.config import TrainConfig
from featkit.training.loop import train
from tests.rounding import assert_weights_close


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_tensors(run_dir / "model.safetensors")[0]


def test_a_full_batch_cut_into_small_loads_gives_one_big_step(tiny_folder, tmp_path, monkeypatch):
    config = TrainConfig(data=str(tiny_folder), preset="paper", epochs=3, lr=0.5, recon_epochs=[], device="cpu")
    whole = train(TrainConfig(**{**config.__dict__, "out": str(tmp_path / "whole")}))
    monkeypatch.setattr(featkit.data.windows, "LOAD_PIXELS", 1000)  # every tiny photo (>= 729 px) is a load of its own
    pieces = train(TrainConfig(**{**config.__dict__, "out": str(tmp_path / "pieces")}))
    a, b = _weights(whole), _weights(pieces)
    # The loads' gradients are summed in another order than one load's (tests/rounding.py): the
    # paper preset is SGD; 3 full-batch steps whose weight gradients sum over the 4 photos'
    # 4482 pixels, after the backward's reductions through four 3 x 3 convolutions (<= 288 terms).
    assert_weights_close(b, a, terms=4482 + 4 * 288, steps=3)
    assert any(not torch.allclose(a[k], _weights(train(TrainConfig(**{**config.__dict__, "epochs": 1,
               "out": str(tmp_path / "one")})))[k]) for k in a)  # fmt: skip


def test_folder_list_file_and_tar_shards_train_the_same_model(tiny_folder, tmp_path):
    from featkit.data.shard_writer import write_shards

    listing = tmp_path / "images.txt"
    listing.write_text("".join(f"{p}\n" for p in find_images(tiny_folder)))
    pattern = write_shards(tiny_folder, tmp_path / "tars", max_count=3)["pattern"]
    runs = {}
    for name, source in (("folder", str(tiny_folder)), ("list", str(listing)), ("shards", pattern)):
        runs[name] = train(TrainConfig(data=source, out=str(tmp_path / name), epochs=2, crop=16, batch_size=3,
                                       epoch_windows=10, recon_epochs=[], device="cpu"))  # fmt: skip
    reference = _weights(runs["folder"])
    for name in ("list", "shards"):
        other = _weights(runs[name])
        assert all(torch.equal(reference[k], other[k]) for k in reference), name
        data = json.loads((runs[name] / "config.json").read_text())["data"]
        assert data["kind"] == name and data["images"] == 4 and data["files"] == "files.txt"
        assert len((runs[name] / "files.txt").read_text().splitlines()) == 4


def _photos(folder: Path, count: int) -> Path:
    folder.mkdir()
    photos = [Image.open(p).convert("RGB").resize((768, 576)) for p in find_images(sample_images())[:8]]
    rng = np.random.default_rng(0)
    for i in range(count):
        x, y = (int(v) for v in rng.integers(0, 256, 2))
        photos[i % 8].crop((x, y, x + 512, y + 384)).save(folder / f"p{i:03d}.jpg", quality=90)
    return folder


_PEAK = "import resource, sys; from featkit.cli import main; code = main(sys.argv[1:]); " \
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024); sys.exit(code)"  # fmt: skip


def _peak_mib(args: list[str]) -> int:
    done = subprocess.run([sys.executable, "-c", _PEAK, *args], capture_output=True, text=True, timeout=600,
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HOME": str(Path.home())})  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_number_of_images(tmp_path):
    """Eight photos and eighty: the same steps, the same memory (all eighty decoded at once
    would add 180 MiB)."""
    peaks = {}
    for n in (8, 80):
        folder = _photos(tmp_path / f"photos{n}", n)
        train_peak = _peak_mib(["train", str(folder), "--epochs", "1", "--epoch-windows", "16", "--batch-size", "8",
                                "--quiet", "--out", str(tmp_path / f"run{n}")])  # fmt: skip
        extract_peak = _peak_mib(["extract", str(folder), "-m", "paper-cae", "--quiet", "-o", str(tmp_path / f"f{n}.npy")])
        peaks[n] = (train_peak, extract_peak)
    (train8, extract8), (train80, extract80) = peaks[8], peaks[80]
    assert train80 < train8 + 60, peaks
    assert extract80 < extract8 + 60, peaks

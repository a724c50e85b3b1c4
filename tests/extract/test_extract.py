"""featkit.features.extraction: manifest, pooling, skipped files, shards, resume, atomicity, bounded memory."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from featkit.data.images import find_images, load_image
from featkit.errors import FeatkitError, OutputExistsError
from featkit.features.extraction import extract, parse_shard
from featkit.features.files import load_features, manifest_path
from featkit.features.merging import merge_features
from featkit.features.pooling import pool_maps
from featkit.runs.models import load_model
from featkit.features.descriptors import describe
from tests.rounding import assert_rows_close

#: Float32 sums along a paper-cae descriptor (tests/rounding.py): conv1 (3 x 3 x 3 terms), conv2
#: (32 x 3 x 3), the cell's L2 norm (16 channels) and the 3 x 3 window's (144 numbers).
DESCRIPTOR_TERMS = 27 + 288 + 16 + 144
#: Whitening adds a 144-term projection and the final L2 norm over 128 numbers.
WHITENED_TERMS = DESCRIPTOR_TERMS + 144 + 128
#: Pooling adds a mean over the cells of a conv2 map of these images (at most 12 x 12).
POOLED_TERMS = DESCRIPTOR_TERMS + 12 * 12


def test_pooled_rows_follow_manifest(classes_dir, run_dir, tmp_path):
    out = tmp_path / "f.npy"
    manifest = extract(classes_dir, run_dir, out, workers=0)
    feats, saved = load_features(out)
    files = find_images(classes_dir)
    assert saved == manifest and feats.dtype == np.float32
    assert feats.shape == (len(files), 128) and manifest["layer"] == "conv2" and manifest["stride"] == 2
    assert manifest["features"] == "descriptors" and manifest["window"] == 3 and manifest["whitened"]
    assert [i["path"] for i in manifest["items"]] == [str(p.resolve()) for p in files]
    raw = extract(classes_dir, run_dir, tmp_path / "raw.npy", raw=True, workers=0)
    activations, _ = load_features(tmp_path / "raw.npy")
    assert activations.shape == (len(files), 16) and raw["features"] == "activations" and not raw["whitened"]
    model, _ = load_model(run_dir)
    for row, path in [(0, files[0]), (7, files[7])]:
        x = load_image(path)[None]
        with torch.no_grad():
            expected = describe(model, x).mean(dim=(2, 3))[0].numpy()
            # extraction batches images by size and lays them out channels-last: another summation order
            assert_rows_close(feats[row], expected, terms=WHITENED_TERMS + 12 * 12)
            assert_rows_close(activations[row], model.features(x).mean(dim=(2, 3))[0], terms=27 + 288 + 12 * 12)
        assert manifest["items"][row]["original_size"] == list(reversed(x.shape[-2:]))
    assert manifest["model"] == str(run_dir.resolve()) and len(manifest["fingerprint"]) == 16


def test_dense_maps_keep_positions(classes_dir, tmp_path):
    out = tmp_path / "dense.npy"
    manifest = extract(classes_dir, "paper-cae", out, layer="conv1", pool="none", workers=0)
    feats, _ = load_features(out)
    pooled = extract(classes_dir, "paper-cae", tmp_path / "avg.npy", layer="conv1", workers=0)
    avg, _ = load_features(tmp_path / "avg.npy")
    for i, item in enumerate(manifest["items"]):
        h, w = item["grid"]
        assert [w, h] == item["size"]  # conv1 has stride 1: one cell per pixel
        block = feats[item["offset"] : item["offset"] + h * w]
        # conv1 (27 terms), the cell's and the window's norms (32 and 288 numbers), a mean over <= 24 x 24 cells
        assert_rows_close(block.mean(axis=0), avg[i], terms=27 + 32 + 288 + 24 * 24)
    assert manifest["rows"] == sum(h * w for h, w in (it["grid"] for it in manifest["items"]))
    assert pooled["dim"] == manifest["dim"] == 32 * 3 * 3  # a 3 x 3 window of conv1 cells, not whitened


@pytest.mark.parametrize("pool", ["max", "gem"])
def test_pools(pool):
    maps = torch.rand(2, 3, 5, 7)
    got = pool_maps(maps, pool)
    expected = maps.amax(dim=(2, 3)) if pool == "max" else maps.clamp(min=1e-6).pow(3).mean(dim=(2, 3)).pow(1 / 3)
    torch.testing.assert_close(got, expected)
    assert pool_maps(maps, pool, grid=2).shape == (2, 12)


def test_skipped_files_are_listed(classes_dir, tmp_path):
    import shutil

    root = tmp_path / "mixed"
    shutil.copytree(classes_dir / "flat", root)
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    manifest = extract(root, "pixels", tmp_path / "m.npy", workers=0)
    assert [s["path"] for s in manifest["skipped"]] == [str((root / "broken.png").resolve())]
    assert manifest["skipped"][0]["reason"] and manifest["rows"] == 6


def test_refuses_to_overwrite(classes_dir, tmp_path):
    out = tmp_path / "f.npy"
    extract(classes_dir, "pixels", out, workers=0)
    with pytest.raises(OutputExistsError, match="--overwrite"):
        extract(classes_dir, "pixels", out, workers=0)
    extract(classes_dir, "pixels", out, grid=2, workers=0, overwrite=True)
    assert load_features(out)[0].shape[1] == 12


def test_shards_merge_into_the_full_run(classes_dir, tmp_path):
    full = extract(classes_dir, "paper-cae", tmp_path / "full.npy", workers=0)
    parts = [tmp_path / f"part{i}.npy" for i in (1, 2, 3)]
    for i, part in enumerate(parts, start=1):
        extract(classes_dir, "paper-cae", part, shard=f"{i}/3", workers=0)
    merged = merge_features(parts[::-1], tmp_path / "merged.npy")
    assert [i["path"] for i in merged["items"]] == [i["path"] for i in full["items"]]
    # each shard batches its images otherwise than the full run: equal to float32 rounding
    assert_rows_close(load_features(tmp_path / "merged.npy")[0], load_features(tmp_path / "full.npy")[0], terms=POOLED_TERMS)
    with pytest.raises(FeatkitError, match="shards 1..3"):
        merge_features(parts[:2], tmp_path / "incomplete.npy")
    with pytest.raises(FeatkitError, match="not a shard"):
        merge_features([tmp_path / "full.npy"], tmp_path / "x.npy")


@pytest.mark.parametrize("bad", ["0/2", "3/2", "a/b", "2"])
def test_bad_shard(bad):
    with pytest.raises(FeatkitError, match="shard"):
        parse_shard(bad)


def test_interrupted_run_leaves_no_output_and_resumes(classes_dir, tmp_path):
    out = tmp_path / "f.npy"
    seen = []

    def interrupt(done, total):
        seen.append(done)
        if done >= 8:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        extract(classes_dir, "paper-cae", out, batch_size=4, workers=0, on_progress=interrupt)
    assert not out.exists() and not manifest_path(out).exists()
    with pytest.raises(OutputExistsError, match="--resume"):
        extract(classes_dir, "paper-cae", out, workers=0)
    with pytest.raises(FeatkitError, match="different"):
        extract(classes_dir, "paper-cae", out, pool="max", resume=True, workers=0)
    progress = []
    resumed = extract(classes_dir, "paper-cae", out, batch_size=4, workers=0, resume=True, on_progress=lambda d, t: progress.append(d))
    assert progress[0] == 8  # the first two batches were not redone
    fresh = extract(classes_dir, "paper-cae", tmp_path / "fresh.npy", workers=0)
    assert [i["path"] for i in resumed["items"]] == [i["path"] for i in fresh["items"]]
    assert_rows_close(load_features(out)[0], load_features(tmp_path / "fresh.npy")[0], terms=POOLED_TERMS)  # other batches
    assert extract(classes_dir, "paper-cae", out, workers=0, resume=True) == resumed  # finished: nothing to do
    assert not any(p.name.endswith(".partial") for p in tmp_path.iterdir())


@pytest.mark.parametrize("pool", ["avg", "none"])
def test_workers_give_the_same_features_and_manifest(classes_dir, tmp_path, pool):
    """Decoding workers write what one process writes: rows (to float32 rounding: the batches
    differ, so do the sums' orders), sizes, order and skipped files."""
    root = tmp_path / "images"
    shutil.copytree(classes_dir, root)
    (root / "flat" / "broken.png").write_bytes(b"not a png")
    one = extract(root, "paper-cae", tmp_path / "a.npy", pool=pool, workers=0, batch_size=5)
    two = extract(root, "paper-cae", tmp_path / "b.npy", pool=pool, workers=2, batch_size=3)
    terms = POOLED_TERMS if pool == "avg" else DESCRIPTOR_TERMS
    assert_rows_close(load_features(tmp_path / "a.npy")[0], load_features(tmp_path / "b.npy")[0], terms=terms)
    assert one["items"] == two["items"] and one["skipped"] == two["skipped"]
    assert [s["path"] for s in two["skipped"]] == [str((root / "flat" / "broken.png").resolve())]


_RSS_SCRIPT = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    from PIL import Image
    from pathlib import Path
    from featkit.features.extraction import extract
    root = Path(sys.argv[1])
    rng = np.random.default_rng(0)
    for n in (16, 128):  # the peak after the small run, then after the large one
        (root / str(n)).mkdir()
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(root / str(n) / f"{i:04d}.png")
        extract(root / str(n), "paper-cae", root / f"{n}.npy", layer="conv1", pool="none", window=1, workers=0,
                batch_size=8)
        print(n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    """
)


def test_peak_memory_does_not_grow_with_n(tmp_path):
    """Dense conv1 maps are 0.5 MB per 64 x 64 image: holding 128 of them would add ~64 MB to
    the peak reached with 16."""
    proc = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    peaks = {int(n): int(kib) / 1024 for n, kib in (line.split() for line in proc.stdout.splitlines())}
    for n in peaks:
        assert np.load(tmp_path / f"{n}.npy", mmap_mode="r").shape == (n * 64 * 64, 32)
    assert peaks[128] - peaks[16] < 30, peaks


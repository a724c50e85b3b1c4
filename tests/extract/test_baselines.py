"""The non-learned baselines through extraction: pixels as a tiny image, daisy, default grids."""

from __future__ import annotations

import numpy as np
from PIL import Image

from featkit.cli import main
from featkit.features.extraction import extract
from featkit.features.files import load_features


def test_pooled_pixels_are_an_8x8_thumbnail(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    halves = np.zeros((32, 40, 3), np.uint8)
    halves[:, :20] = (255, 0, 0)  # left half red, right half blue
    halves[:, 20:] = (0, 0, 255)
    Image.fromarray(halves).save(folder / "halves.png")

    manifest = extract(folder, "pixels", tmp_path / "tiny.npy", workers=0)
    feats, _ = load_features(tmp_path / "tiny.npy")
    assert feats.shape == (1, 192) and manifest["grid"] == 8 and manifest["dim"] == 192
    red, green, blue = feats[0].reshape(3, 8, 8)  # channel-major, one 8 x 8 thumbnail each
    np.testing.assert_allclose(red[:, :4], 1.0, atol=1e-6)
    np.testing.assert_allclose(red[:, 4:], -1.0, atol=1e-6)
    np.testing.assert_allclose(blue, -red, atol=1e-6)
    np.testing.assert_allclose(green, -1.0, atol=1e-6)

    extract(folder, "pixels", tmp_path / "mean.npy", grid=1, workers=0)  # an explicit grid still wins
    mean, _ = load_features(tmp_path / "mean.npy")
    np.testing.assert_allclose(mean, [[0.0, -1.0, 0.0]], atol=1e-6)


def test_daisy_features_pooled_and_dense(classes_dir, tmp_path):
    pooled = extract(classes_dir, "daisy", tmp_path / "d.npy", workers=0)
    feats, _ = load_features(tmp_path / "d.npy")
    assert pooled["grid"] == 1 and feats.shape == (18, 200) and pooled["stride"] == 2
    assert pooled["features"] == "descriptors" and pooled["window"] == 1 and not pooled["whitened"]
    norms = np.linalg.norm(feats, axis=1)  # a mean of unit descriptors: below 1, far above 0
    assert np.all(norms <= 1 + 1e-5) and np.all(norms > 0.3)
    raw = extract(classes_dir, "daisy", tmp_path / "raw.npy", raw=True, workers=0)
    sums = load_features(tmp_path / "raw.npy")[0].sum(axis=1)
    assert raw["features"] == "activations" and raw["window"] is None
    np.testing.assert_allclose(sums, 1.0, rtol=1e-5)  # mean of DAISY's own L1-normalised histograms
    dense = extract(classes_dir, "daisy", tmp_path / "dense.npy", pool="none", workers=0)
    for item in dense["items"]:
        w, h = item["size"]
        assert item["grid"] == [-(-h // 2), -(-w // 2)]
    assert dense["rows"] == sum(h * w for h, w in (item["grid"] for item in dense["items"]))


def test_baselines_from_the_command_line(classes_dir, tmp_path, capsys):
    assert main(["extract", str(classes_dir), "-m", "pixels", "-o", str(tmp_path / "p.npy"), "-q", "--workers", "0"]) == 0
    assert "18 x 192" in capsys.readouterr().err
    assert main(["extract", str(classes_dir), "-m", "daisy", "-o", str(tmp_path / "d.npy"), "-q", "--workers", "0"]) == 0
    assert "18 x 200 (daisy descriptors, stride 2" in capsys.readouterr().err
    assert main(["extract", str(classes_dir), "-m", "pixels", "-o", str(tmp_path / "g.npy"), "-q", "--grid", "2"]) == 0
    assert "18 x 12" in capsys.readouterr().err

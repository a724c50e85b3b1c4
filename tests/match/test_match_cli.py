"""`featkit match`: outputs, JSON schema, exit codes and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from featkit.cli import main
from PIL import Image

MATCH_KEYS = {"xa", "ya", "xb", "yb", "score", "inlier"}


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0], err
    for needle in needles:
        assert needle in err[0], err[0]
    return err[0]


def test_help_documents_exit_codes():
    proc = subprocess.run([sys.executable, "-m", "featkit", "match", "--help"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    out = " ".join(proc.stdout.split())
    assert "Usage" in out and "--gt-homography" in out and "--ransac" in out
    assert "3 ran fine but found no matches" in out


def test_matches_are_written_and_measured(tmp_path, pair_files, capsys):
    a, b, h = pair_files
    png, js = tmp_path / "m.png", tmp_path / "m.json"
    code = main(["match", str(a), str(b), "-m", "paper-cae", "-o", str(png), "--json", str(js), "--gt-homography", str(h)])
    assert code == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "matches" in out[0] and "MMA@1/3/5px" in out[0]

    data = json.loads(js.read_text())
    assert data["num_matches"] == len(data["matches"]) > 0
    assert data["num_inliers"] == sum(m["inlier"] for m in data["matches"]) > 0
    assert all(set(m) == MATCH_KEYS for m in data["matches"])
    assert all(isinstance(m["inlier"], bool) and isinstance(m["xa"], float) for m in data["matches"])
    assert data["size_a"] == [128, 128] and data["layer"] == "conv2" and data["stride"] == 2
    assert np.array(data["transform"]).shape == (3, 3)
    # The untrained CAE on a 128 px photo: most matches within 3 px, the homography's corners
    # within 3 % of the side (2.9 px measured; RANSAC's draws move it by a pixel or so).
    assert set(data["evaluation"]["mma"]) == {"1", "3", "5"} and data["evaluation"]["mma"]["3"] > 0.6
    assert data["evaluation"]["corner_error"] < 4.0
    assert data["summary"] == out[0]

    with Image.open(png) as picture:
        assert picture.format == "PNG" and picture.width > 2 * 128 and picture.height > 128
        pixels = np.asarray(picture.convert("RGB")).reshape(-1, 3)
    assert (pixels == (40, 220, 60)).all(axis=1).sum() > 100  # inlier lines drawn


def test_fundamental_verification(tmp_path, pair_files, capsys):
    a, b, h = pair_files
    png, js = tmp_path / "m.png", tmp_path / "m.json"
    code = main(["match", str(a), str(b), "-m", "paper-cae", "-o", str(png), "--json", str(js), "--ransac", "fundamental", "--gt-homography", str(h)])
    assert code == 0
    assert "fundamental inliers" in capsys.readouterr().out
    data = json.loads(js.read_text())
    assert data["ransac"] == "fundamental" and data["num_inliers"] >= 16
    f = np.array(data["transform"])
    assert f.shape == (3, 3) and abs(np.linalg.det(f / np.abs(f).max())) < 1e-9  # rank 2
    inliers = np.array([[m["xa"], m["ya"], m["xb"], m["yb"]] for m in data["matches"] if m["inlier"]])
    lines = np.c_[inliers[:, :2], np.ones(len(inliers))] @ f.T
    gap = np.abs(np.sum(np.c_[inliers[:, 2:], np.ones(len(inliers))] * lines, axis=1)) / np.hypot(lines[:, 0], lines[:, 1])
    # the consensus set of the best sample is within the default 3 px of its epipolar lines; the
    # matrix reported is refitted on that set, so a few may now lie a little further away
    assert np.mean(gap <= 3.0) > 0.9 and np.median(gap) < 1.5
    assert data["evaluation"]["corner_error"] is None
    with Image.open(png) as picture:
        pixels = np.asarray(picture.convert("RGB")).reshape(-1, 3)
    assert (pixels == (40, 220, 60)).all(axis=1).sum() > 100  # inlier lines drawn


def test_daisy_baseline(tmp_path, pair_files, capsys):
    a, b, h = pair_files
    js = tmp_path / "m.json"
    code = main(["match", str(a), str(b), "-m", "daisy", "-o", str(tmp_path / "m.png"), "--json", str(js), "--gt-homography", str(h)])
    assert code == 0
    data = json.loads(js.read_text())
    assert data["model"] == "daisy" and data["layer"] == "daisy" and data["stride"] == 2
    assert data["num_inliers"] >= 10 and data["evaluation"]["mma"]["3"] > 0.8  # few (17 deg of rotation) but right


def test_outputs_are_never_silently_replaced(tmp_path, pair_files, capsys):
    a, b, _ = pair_files
    png = tmp_path / "m.png"
    png.write_bytes(b"keep me")
    args = ["match", str(a), str(b), "-m", "pixels", "-o", str(png)]
    assert main(args) == 1
    _one_line_error(capsys, "m.png", "already exists", "--overwrite")
    assert png.read_bytes() == b"keep me"
    assert main([*args, "--overwrite", "--ransac", "none"]) == 0
    with Image.open(png) as picture:
        assert picture.format == "PNG"


def test_featureless_image_exits_3_with_empty_json(tmp_path, pair_files, capsys):
    a, _, _ = pair_files
    grey = tmp_path / "grey.png"
    Image.new("RGB", (128, 96), (128, 128, 128)).save(grey)
    png, js = tmp_path / "m.png", tmp_path / "m.json"
    assert main(["match", str(grey), str(a), "-m", "paper-cae", "-o", str(png), "--json", str(js)]) == 3
    captured = capsys.readouterr()
    assert captured.out.startswith("0 matches") and "no matches found" in captured.err
    data = json.loads(js.read_text())
    assert data["matches"] == [] and data["num_matches"] == 0 and data["transform"] is None
    with Image.open(png) as picture:
        assert picture.width > 128 + 128


def test_unreadable_image_is_one_line_error(tmp_path, pair_files, capsys):
    _, b, _ = pair_files
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    png = tmp_path / "m.png"
    assert main(["match", str(broken), str(b), "-m", "pixels", "-o", str(png)]) == 1
    _one_line_error(capsys, "broken.png")
    assert main(["match", str(tmp_path / "missing.jpg"), str(b), "-m", "pixels", "-o", str(png)]) == 1
    _one_line_error(capsys, "missing.jpg", "no such file")
    assert not png.exists() and not list(tmp_path.glob(".m.png*"))


def test_wildly_different_sizes_are_refused(tmp_path, pair_files, capsys):
    a, _, _ = pair_files
    tiny = tmp_path / "tiny.png"
    Image.fromarray(np.uint8(np.random.default_rng(0).integers(0, 255, (20, 24, 3)))).save(tiny)
    assert main(["match", str(a), str(tiny), "-m", "pixels", "-o", str(tmp_path / "m.png")]) == 1
    _one_line_error(capsys, "wildly different size", "128 x 128", "24 x 20", "--max-size-ratio")


def test_bad_homography_file_is_one_line_error(tmp_path, pair_files, capsys):
    a, b, _ = pair_files
    bad = tmp_path / "H.txt"
    bad.write_text("1 0 0\n0 1 0\n")
    assert main(["match", str(a), str(b), "-m", "pixels", "-o", str(tmp_path / "m.png"), "--gt-homography", str(bad)]) == 1
    _one_line_error(capsys, "H.txt", "expected 9 numbers")


@pytest.mark.parametrize(
    "extra",
    [["--ransac", "similarity"], ["--window", "2"], ["--max-matches", "0"], ["--max-side", "-1"]],
    ids=["ransac", "window", "max-matches", "max-side"],
)
def test_bad_options_are_usage_errors(tmp_path, pair_files, extra):
    a, b, _ = pair_files
    assert main(["match", str(a), str(b), "-m", "pixels", "-o", str(tmp_path / "m.png"), *extra]) == 2


def test_unknown_layer_lists_the_layers(tmp_path, pair_files, capsys):
    a, b, _ = pair_files
    assert main(["match", str(a), str(b), "-m", "paper-cae", "-o", str(tmp_path / "m.png"), "--layer", "conv9"]) == 1
    _one_line_error(capsys, "conv9", "conv1", "conv2")


def test_run_directory_model(tmp_path, pair_files, capsys):
    from featkit.runs.models import save_model
    from featkit.encoders import create_encoder
    from featkit.io import write_json

    torch.manual_seed(5)
    model = create_encoder("cae-deep")
    run = tmp_path / "run"
    run.mkdir()
    save_model(run, model)
    write_json(run / "config.json", {"encoder": model.config})
    a, b, _ = pair_files
    js = tmp_path / "m.json"
    code = main(["match", str(a), str(b), "-m", str(run), "-o", str(tmp_path / "m.png"), "--json", str(js), "--ransac", "affine"])
    assert code in (0, 3)
    data = json.loads(js.read_text())
    assert data["layer"] == "conv3" and data["stride"] == 4 and data["ransac"] == "affine"


def test_unknown_picture_format_is_refused(tmp_path, pair_files, capsys):
    a, b, _ = pair_files
    assert main(["match", str(a), str(b), "-m", "pixels", "-o", str(tmp_path / "m.xyz")]) == 1
    _one_line_error(capsys, "m.xyz", ".png")

"""The model shipped inside featkit: found by name, used when no model is given, kept apart
from the images featkit evaluates on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from featkit.cli import main
from featkit.features.files import load_features
from featkit.runs.models import DEFAULT_MODEL, PRETRAINED_DIR, load_model, pretrained_models

ROOT = Path(__file__).resolve().parents[2]
#: What featkit's benches evaluate on (bench/bench_match.py: EVAL_PHOTOS and the stereo pair's other view).
EVALUATED = {"astronaut.png", "chelsea.png", "coffee.png", "grass.png", "ihc.png", "motorcycle_left.png",
             "motorcycle_right.png", "retina.jpg"}  # fmt: skip


def test_the_shipped_model_loads_by_name_with_its_whitening_and_provenance():
    assert DEFAULT_MODEL in pretrained_models()
    model, config = load_model(DEFAULT_MODEL)
    assert model.whitening is not None and model.whitening.layer == model.default_layer
    folder = pretrained_models()[DEFAULT_MODEL]
    provenance = (folder / "PROVENANCE.md").read_text()
    assert "bench/build_pretrained.py" in provenance and f"seed {config['train']['seed']}" in provenance
    images = (folder / "training-images.txt").read_text().split()
    assert len(images) == config["data"]["images"]
    assert not {Path(name).name for name in images} & EVALUATED  # never trained on what the benches evaluate


def test_the_package_data_glob_ships_every_file_of_it():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["featkit"]
    shipped = {p for g in globs for p in (ROOT / "featkit").glob(g) if p.is_file()}
    assert {p for p in PRETRAINED_DIR.rglob("*") if p.is_file()} == shipped


def test_extract_and_match_without_a_model_use_the_shipped_one_and_say_so(classes_dir, tmp_path, capsys):
    feats = tmp_path / "f.npy"
    assert main(["extract", str(classes_dir / "flat"), "-o", str(feats), "-q", "--workers", "0"]) == 0
    assert f"; model {DEFAULT_MODEL}" in capsys.readouterr().err
    _, manifest = load_features(feats)
    assert manifest["model"] == DEFAULT_MODEL and manifest["whitened"]
    a, b = sorted((classes_dir / "flat").iterdir())[:2]
    main(["match", str(a), str(b), "-o", str(tmp_path / "m.png"), "--json", str(tmp_path / "m.json")])
    assert f"model {DEFAULT_MODEL}" in capsys.readouterr().out
    assert json.loads((tmp_path / "m.json").read_text())["model"] == DEFAULT_MODEL


def test_featkit_encoders_lists_the_shipped_model(capsys):
    assert main(["encoders"]) == 0
    out = capsys.readouterr().out
    assert DEFAULT_MODEL in out and "default --model" in out

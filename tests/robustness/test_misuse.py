"""faiss and scikit-learn misuse through the CLI, with asserts stripped (python -O): one-line
errors naming the problem, and k larger than the collection answering with what exists."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest


def _featkit_O(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-O", "-m", "featkit", *map(str, args)], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def vectors(tmp_path_factory):
    root = tmp_path_factory.mktemp("misuse")
    rng = np.random.default_rng(0)
    np.save(root / "x.npy", rng.normal(size=(12, 16)).astype(np.float32))
    assert _featkit_O("index", root / "x.npy", "-o", root / "x.faiss").returncode == 0
    return root


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    return lines[0]


def test_query_of_the_wrong_dimension(vectors):
    np.save(vectors / "q8.npy", np.zeros((2, 8), np.float32))
    line = _one_error_line(_featkit_O("search", vectors / "x.faiss", vectors / "q8.npy"))
    assert "dimension" in line and "16" in line and "8" in line


def test_k_larger_than_the_index_returns_what_exists(vectors):
    np.save(vectors / "q16.npy", np.ones((1, 16), np.float32))
    proc = _featkit_O("search", vectors / "x.faiss", vectors / "q16.npy", "-k", 50, "--json")
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    hits = results[0]["neighbours"] if isinstance(results, list) else results["results"][0]["neighbours"]
    assert len(hits) == 12


def test_more_clusters_than_samples(vectors):
    line = _one_error_line(_featkit_O("cluster", vectors / "x.npy", "-k", 50))
    assert "50" in line and "12" in line


def test_nan_rows(vectors):
    bad = np.load(vectors / "x.npy")
    bad[3, 5] = np.nan
    np.save(vectors / "nan.npy", bad)
    for args in (["index", vectors / "nan.npy", "-o", vectors / "nan.faiss"], ["cluster", vectors / "nan.npy", "-k", 2]):
        line = _one_error_line(_featkit_O(*args))
        assert "NaN" in line or "non-finite" in line or "finite" in line, line

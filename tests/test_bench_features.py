"""bench/bench_features.py --quick runs end to end: every row and column, finite numbers, the targets."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest

from tests.scripts import ROOT

MATCH_COLUMNS = ["easy @1", "easy @3", "easy @5", "easy n",
                 *(f"view {bin} {c}" for bin in ("20-35°", "35-50°", "50-60°") for c in ("@1", "@3", "@5", "n")),
                 *(f"stereo {side} {c}" for side in ("512", "full") for c in ("@1", "@3", "@5", "n"))]  # fmt: skip
RETRIEVAL_COLUMNS = ["inst mAP", "inst R@1", "dup R@1", "dup mAP", "dig mAP", "dig NMI", "train s"]
ENCODERS = ["default recipe", "default recipe, perspective warps 0.3", "paper-cae pl+sfl, no contrast", "paper-cae pl, no contrast", "default recipe, loss pl",
            "random init", "shipped featkit-cae", "shipped featkit-cae, fine-tuned", "pixels", "daisy"]  # fmt: skip
#: Each table: its columns, its rows (SIFT, the pyramid and the LoG keypoint rows only match,
#: perceptual hashing only searches).
MATCHING = [ENCODERS[0], "default recipe, 3 scales", "default recipe, LoG keypoints", "default recipe, LoG keypoints from 2x",
            *ENCODERS[1:7],
            "shipped featkit-cae, LoG keypoints", *ENCODERS[7:]]  # fmt: skip
#: ... and the rerank rows only search near-duplicates.
SEARCHING = [ENCODERS[0], "default recipe, search --rerank 5", *ENCODERS[1:7], "shipped featkit-cae, search --rerank 5",
             *ENCODERS[7:]]  # fmt: skip
TABLES = [
    (MATCH_COLUMNS, [*MATCHING, "sift", "gap to daisy (default recipe - daisy)", "gap to sift (default recipe - sift)"]),
    (RETRIEVAL_COLUMNS, [*SEARCHING, "phash", "gap to daisy (default recipe - daisy)", "gap to phash (default recipe - phash)"]),
]  # fmt: skip


@pytest.mark.slow
def test_bench_features_quick_prints_the_table(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_features.py"), "--quick", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("| features |")]
    assert len(starts) == len(TABLES)
    for start, (columns, rows) in zip(starts, TABLES):
        table = []
        for line in lines[start:]:
            if not line.startswith("|"):
                break
            table.append([c.strip() for c in line.strip("|").split("|")])
        assert table[0] == ["features", *columns] and set(table[1]) == {"---"}
        assert [row[0] for row in table[2:]] == rows
        for row in table[2:]:
            assert len(row) == 1 + len(columns), row
            assert all(math.isfinite(float(cell.split()[0])) for cell in row[1:] if "rerank" not in row[0] or cell != "-"), row
            if "rerank" in row[0]:  # near-duplicate columns only
                assert [c for c, v in zip(columns, row[1:]) if v != "-"] == ["dup R@1", "dup mAP", "train s"], row
    targets = [line for line in proc.stdout.splitlines() if line.startswith("target ")]
    assert len(targets) == 7 + 12 + 5 + 12 + 12 + 3 and all(line.endswith((": met", ": not met")) for line in targets)
    assert "same settings, same runs" not in proc.stdout  # the recipe adds the contrast term to the paper's CAE

"""Extraction from WebDataset tar shards: whole, and split into jobs that each read only
their own tar files, then merged into the rows one run gives."""

from __future__ import annotations

import numpy as np

from featkit.cli import main
from featkit.features.extraction import extract
from featkit.features.merging import merge_features
from featkit.data.shard_writer import write_shards
from tests.rounding import assert_rows_close

#: Float32 sums along a pooled paper-cae descriptor (tests/rounding.py): conv1 (27 terms), conv2
#: (288), the cell's and the window's L2 norms (16, 144), the mean over a conv2 map (<= 12 x 12).
POOLED_TERMS = 27 + 288 + 16 + 144 + 12 * 12


def test_sharded_jobs_on_tars_read_their_own_tars_and_merge_to_one_run(classes_dir, tmp_path):
    pattern = write_shards(classes_dir, tmp_path / "tars", max_count=4)["pattern"]  # 18 images -> 5 tars
    whole = extract(pattern, "paper-cae", tmp_path / "whole.npy", workers=0)
    assert whole["kind"] == "shards" and len(whole["items"]) == 18
    parts = []
    for i in (1, 2, 3):
        out = tmp_path / f"part{i}.npy"
        assert main(["extract", pattern, "-m", "paper-cae", "-o", str(out), "--shard", f"{i}/3", "--quiet"]) == 0
        parts.append(out)
    tars = [sorted({item["path"].split(":")[0] for item in extract_manifest(p)["items"]}) for p in parts]
    assert [len(t) for t in tars] == [1, 2, 2] and not set(tars[0]) & set(tars[1]) and not set(tars[1]) & set(tars[2])
    merged = merge_features(parts, tmp_path / "merged.npy")
    assert [item["path"] for item in merged["items"]] == [item["path"] for item in whole["items"]]
    # the jobs batch their images otherwise than the whole run: equal rows to float32 rounding
    assert_rows_close(np.load(tmp_path / "merged.npy"), np.load(tmp_path / "whole.npy"), terms=POOLED_TERMS)


def extract_manifest(npy):
    import json

    return json.loads(npy.with_suffix(".json").read_text())

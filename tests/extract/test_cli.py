"""The extract / index / search / cluster / evaluate commands end to end, and their errors."""

from __future__ import annotations

import csv
import io
import json

import pytest

from featkit.cli import main


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_end_to_end(classes_dir, tmp_path, capsys):
    feats, index = tmp_path / "f.npy", tmp_path / "f.faiss"
    code, _, err = run(capsys, "extract", classes_dir, "-m", "paper-cae", "-o", feats, "--grid", "2", "--workers", "0", "--device", "cpu")
    assert code == 0 and "18 images" in err and feats.is_file() and feats.with_suffix(".json").is_file()
    assert run(capsys, "index", feats, "-o", index)[0] == 0
    query = sorted((classes_dir / "flat").iterdir())[0]

    code, out, _ = run(capsys, "search", index, query, "-k", "3", "--json")
    hits = json.loads(out)[0]["neighbours"]
    assert code == 0 and len(hits) == 3 and hits[0]["path"] == str(query.resolve()) and hits[0]["rank"] == 1
    code, out, _ = run(capsys, "search", index, feats, "-k", "50", "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 18 * 18 and set(rows[0]) == {"query", "rank", "id", "path", "distance"}
    code, out, _ = run(capsys, "search", index, query, "-k", "2")
    assert code == 0 and "nearest to" in out and "flat" in out

    code, out, _ = run(capsys, "cluster", feats, "-k", "3")
    assert code == 0 and "silhouette" in out and "NMI" in out and "ARI" in out
    assert feats.with_suffix(".clusters.csv").is_file()
    code, out, _ = run(capsys, "evaluate", "retrieval", feats)
    assert code == 0 and "mAP" in out and "recall@10" in out


def test_shards_and_merge(classes_dir, tmp_path, capsys):
    for i in (1, 2):
        assert run(capsys, "extract", classes_dir, "-m", "pixels", "-o", tmp_path / f"p{i}.npy", "--shard", f"{i}/2", "-q", "--workers", "0")[0] == 0
    code, _, err = run(capsys, "merge", tmp_path / "p1.npy", tmp_path / "p2.npy", "-o", tmp_path / "all.npy")
    assert code == 0 and "18 images from 2 shards" in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["extract", "{missing}", "-m", "pixels", "-o", "{tmp}/x.npy"], "no such file or folder"),
        (["extract", "{classes}", "-m", "no-such-model", "-o", "{tmp}/x.npy"], "no-such-model"),
        (["extract", "{classes}", "-m", "pixels", "-o", "{tmp}/x.npy", "--shard", "3/2"], "shard 3/2"),
        (["extract", "{classes}", "-m", "paper-cae", "-o", "{tmp}/x.npy", "--layer", "conv9"], "conv9"),
        (["index", "{missing}"], "no such features file"),
        (["search", "{missing}", "{missing}"], "no such index file"),
        (["evaluate", "retrieval", "{missing}"], "no such features file"),
    ],
)
def test_errors_are_one_line(classes_dir, tmp_path, capsys, args, message):
    fill = {"missing": tmp_path / "missing.npy", "tmp": tmp_path, "classes": classes_dir}
    code, _, err = run(capsys, *(a.format(**{k: str(v) for k, v in fill.items()}) for a in args))
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], err


def test_search_says_what_a_non_index_file_is(pixel_feats, classes_dir, tmp_path, capsys):
    image = sorted((classes_dir / "flat").iterdir())[0]
    (tmp_path / "notes.txt").write_text("not an index")
    cases = [
        (pixel_feats, f"is a features file, not an index; build one with `featkit index {pixel_feats} -o {pixel_feats.with_suffix('.faiss')}`"),
        (image, "is an image, not an index: the index comes first"),
        (tmp_path / "notes.txt", "is not a faiss index; build one with `featkit index"),
        (tmp_path, "is a folder, not an index"),
    ]
    for index, message in cases:
        code, _, err = run(capsys, "search", index, image)
        lines = err.strip().splitlines()
        assert code == 1 and len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], err


def test_cluster_more_clusters_than_images(pixel_feats, capsys):
    code, _, err = run(capsys, "cluster", pixel_feats, "-k", "99", "-o", pixel_feats.with_suffix(".k99.csv"))
    assert code == 1 and "cannot make 99 clusters from 18 samples" in err


@pytest.mark.parametrize("command", [["extract"], ["merge"], ["index"], ["search"], ["cluster"], ["evaluate", "retrieval"]])
def test_help(command, capsys):
    code, out, _ = run(capsys, *command, "--help")
    assert code == 0 and "Usage" in out

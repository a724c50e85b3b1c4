"""`featkit shards`: folders to WebDataset tar shards, byte for byte, and reading them back."""

from __future__ import annotations

import json
import tarfile

import numpy as np
import pytest
from PIL import Image

from featkit.cli import main
from featkit.errors import ImageError, OutputExistsError, ShardError
from featkit.data.shards import MANIFEST, expand_shards, iter_shard_images
from featkit.data.shard_writer import write_shards

#: Relative paths of the test folder: nested folders, dots in names, two images with one stem.
NAMES = ["a.b/c.d.PNG", "cats/img.000.jpg", "cats/img.001.jpg", "cats/img_000.jpg", "x.jpg", "x.png"]


def _save(path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (6 + seed, 9, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="PNG" if path.suffix.lower() == ".png" else "JPEG")


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "photos"
    for i, name in enumerate(NAMES):
        _save(root / name, i)
    return root


def test_round_trip_keeps_bytes_paths_and_order(folder, tmp_path):
    summary = write_shards(folder, tmp_path / "out")
    assert summary["images"] == len(NAMES) and summary["skipped"] == []
    assert summary["shards"] == [str(tmp_path / "out" / "shard-000000.tar")] == [summary["pattern"]]
    images = list(iter_shard_images(summary["pattern"]))
    assert [im.path for im in images] == NAMES
    assert [im.data for im in images] == [(folder / name).read_bytes() for name in NAMES]
    assert [im.key for im in images] == ["a_b/c_d", "cats/img_000", "cats/img_001", "cats/img_000_1", "x", "x_1"]
    with tarfile.open(summary["shards"][0]) as tar:
        assert tar.getnames()[:2] == ["a_b/c_d.png", "a_b/c_d.json"]


def test_webdataset_reads_the_same_samples(folder, tmp_path):
    webdataset = pytest.importorskip("webdataset")
    summary = write_shards(folder, tmp_path / "out", max_count=4)
    samples = list(webdataset.WebDataset(summary["pattern"], shardshuffle=False))
    assert [s["__key__"] for s in samples] == [im.key for im in iter_shard_images(summary["pattern"])]
    assert [json.loads(s["json"])["path"] for s in samples] == NAMES
    assert samples[-1]["png"] == (folder / "x.png").read_bytes()


def test_max_count_and_max_size_split_the_shards(folder, tmp_path):
    summary = write_shards(folder, tmp_path / "count", max_count=4)
    assert summary["pattern"] == str(tmp_path / "count" / "shard-{000000..000001}.tar")
    assert expand_shards(summary["pattern"]) == summary["shards"]
    manifest = json.loads((tmp_path / "count" / MANIFEST).read_text())
    assert [s["images"] for s in manifest["shards"]] == [4, 2]

    max_size = 10240  # one tar record: room for two or three of these small images
    summary = write_shards(folder, tmp_path / "size", max_size=max_size)
    sizes = [(tmp_path / "size" / s["name"]).stat().st_size for s in json.loads((tmp_path / "size" / MANIFEST).read_text())["shards"]]
    assert len(sizes) > 1 and all(size <= max_size for size in sizes) and sum(sizes) == summary["bytes"]
    assert [im.path for im in iter_shard_images(summary["shards"])] == NAMES


def test_broken_and_missing_files_are_skipped_with_reasons(folder, tmp_path):
    (folder / "broken.jpg").write_bytes(b"not an image")
    listing = tmp_path / "list.txt"
    listing.write_text("# a list file: relative to its folder\nphotos/x.jpg\nphotos/broken.jpg\nphotos/gone.png\n")
    summary = write_shards(listing, tmp_path / "out")
    assert summary["images"] == 1 and [im.path for im in iter_shard_images(summary["pattern"])] == ["photos/x.jpg"]
    reasons = {s["path"].rsplit("/", 1)[1]: s["reason"] for s in summary["skipped"]}
    assert reasons == {"broken.jpg": "not an image Pillow can read", "gone.png": "no such file"}
    with pytest.raises(ImageError, match="no readable image"):
        write_shards(folder / "broken.jpg", tmp_path / "none")
    assert not (tmp_path / "none").exists()


def test_existing_output_is_refused_and_replaced_only_with_overwrite(folder, tmp_path):
    out = tmp_path / "out"
    out.mkdir()  # an empty folder is fine
    write_shards(folder, out, max_count=2)
    with pytest.raises(OutputExistsError, match="--overwrite"):
        write_shards(folder, out)
    summary = write_shards(folder, out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["shard-000000.tar", MANIFEST] and summary["images"] == len(NAMES)
    with pytest.raises(OutputExistsError, match="not written by `featkit shards`"):
        write_shards(folder, folder, overwrite=True)  # never deletes a folder it did not write
    assert (folder / "x.jpg").is_file()


def test_nothing_is_left_half_written(folder, tmp_path):
    def interrupt(done, total):
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_shards(folder, tmp_path / "out", max_count=1, on_progress=interrupt)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]


def test_corrupt_truncated_and_missing_shards_name_the_shard(folder, tmp_path):
    shard = write_shards(folder, tmp_path / "out")["shards"][0]
    data = open(shard, "rb").read()
    with tarfile.open(shard) as tar:
        members = tar.getmembers()
    header = members[2].offset
    broken = tmp_path / "broken.tar"
    broken.write_bytes(data[:header] + b"garbage!" * 64 + data[header + 512 :])  # a damaged header mid-archive
    with pytest.raises(ShardError, match="broken.tar: corrupt"):
        list(iter_shard_images([broken]))
    for cut, message in [(members[2].offset_data + 10, "not a readable"), (members[4].offset, "truncated")]:
        broken.write_bytes(data[:cut])  # inside an image's data; between two members
        with pytest.raises(ShardError, match=f"broken.tar: {message}"):
            list(iter_shard_images([broken]))
    broken.write_bytes(b"not a tar at all" * 100)
    with pytest.raises(ShardError, match="broken.tar: not a readable uncompressed tar"):
        list(iter_shard_images([broken]))
    with pytest.raises(ShardError, match=r"1 of the 2 shards .* do not exist: .*shard-000001.tar"):
        expand_shards(str(tmp_path / "out" / "shard-{000000..000001}.tar"))
    with pytest.raises(ShardError, match="not a valid shard pattern"):
        expand_shards(str(tmp_path / "out" / "shard-{000000..000001.tar"))


def test_cli_prints_the_pattern_and_exits_1_with_one_line_errors(folder, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["shards", str(folder), "-o", str(out), "--max-count", "4", "-q"]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"{out}/shard-{{000000..000001}}.tar\n"
    assert "wrote 2 shard(s)" in captured.err and f"{len(NAMES)} images" in captured.err
    for args in (["shards", str(folder), "-o", str(out)], ["shards", str(tmp_path / "missing"), "-o", str(tmp_path / "o2")]):
        assert main(args) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error:"), err
    assert main(["shards", str(folder), "-o", str(out), "--overwrite", "--max-count", "0"]) == 2  # usage error


def test_cli_help():
    assert main(["shards", "--help"]) == 0

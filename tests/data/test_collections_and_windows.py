"""featkit.data.collections: collections from folders, lists and tar shards; plans; streamed steps."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
import torch
from PIL import Image

from featkit.data.images import decode_image, find_images
from featkit.data.samples import sample_images
from featkit.errors import FeatkitError, ImageError
from featkit.data.windows import StepStream, Window, plan_epoch, window_box
from featkit.data.collections import open_collection, scan_sizes


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Six small real photos of different sizes as JPEG and PNG."""
    root = tmp_path_factory.mktemp("photos")
    for i, path in enumerate(find_images(sample_images())[:6]):
        with Image.open(path) as img:
            img = img.convert("RGB").resize((40 + 3 * i, 30 + 5 * i))
            img.save(root / f"p{i}.{'jpg' if i % 2 else 'png'}")
    return root


def _write_tar(path: Path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="module")
def shards(photos, tmp_path_factory) -> Path:
    """The six photos in three tar shards, with a non-image member beside each image."""
    root = tmp_path_factory.mktemp("shards")
    files = sorted(photos.iterdir())
    for k in range(3):
        members = {}
        for f in files[2 * k : 2 * k + 2]:
            members[f"{f.stem}.json"] = b'{"source": "%s"}' % f.name.encode()
            members[f"{f.stem}{f.suffix}"] = f.read_bytes()
        _write_tar(root / f"part-{k:03d}.tar", members)
    return root


def test_plan_replays_and_covers_every_image():
    plan = plan_epoch(5, 3, seed=1, batch_size=4, crops_per_image=3)
    assert plan == plan_epoch(5, 3, seed=1, batch_size=4, crops_per_image=3)
    assert plan != plan_epoch(5, 4, seed=1, batch_size=4, crops_per_image=3)
    windows = [w for step in plan for w in step]
    assert [len(s) for s in plan] == [4, 4, 4, 3] and sorted(w.item for w in windows) == sorted(list(range(5)) * 3)
    assert all(0 <= w.v < 1 and 0 <= w.u < 1 for w in windows)
    assert len(plan_epoch(5, 0, seed=1, batch_size=0)) == 1  # full batch


def test_fixed_size_epochs_see_every_image_once_before_any_twice():
    count, per_epoch = 7, 4
    seen = [w.item for e in range(7) for step in plan_epoch(count, e, seed=2, batch_size=2, epoch_windows=per_epoch)
            for w in step]  # fmt: skip
    assert len(seen) == 28
    for start in range(0, 28 - count + 1, count):
        assert sorted(seen[start : start + count]) == list(range(count))
    # the cost of an epoch does not depend on the collection's size
    assert len(plan_epoch(10_000, 0, seed=0, batch_size=16, crops_per_image=4, epoch_windows=512)) == 32


def test_window_box_stays_inside_and_never_exceeds_the_image():
    assert window_box(Window(0, 0.0, 0.999), (30, 50), 16) == (0, 34, 16, 16)
    assert window_box(Window(0, 0.3, 0.2), (30, 50), 16) == (0, 0, 16, 16)  # starts before the edge: clamped to it
    assert window_box(Window(0, 0.5, 0.5), (10, 50), 16) == (0, 17, 10, 16)
    assert window_box(Window(0, 0.7, 0.2), (10, 50), 0) == (0, 0, 10, 50)


def test_step_stream_cuts_the_planned_pixels(photos):
    collection = open_collection(photos)
    _, sizes, _ = scan_sizes(collection)
    plan = {"seed": 0, "batch_size": 4, "crops_per_image": 2, "epoch_windows": 0}
    stream = StepStream(collection, sizes, plan=plan, crop=16, max_side=None, start=(0, 0), stop=1)
    loads = list(stream)
    steps = plan_epoch(len(collection), 0, **plan)
    assert [(ld.step, ld.windows, ld.last) for ld in loads] == [(s, len(w), True) for s, w in enumerate(steps)]
    first = steps[0][0]
    image = decode_image(collection.refs[first.item])[0]
    top, left, h, w = window_box(first, tuple(image.shape[-2:]), 16)
    assert any(torch.equal(b[i], image[:, top : top + h, left : left + w]) for b in loads[0].batches for i in range(len(b)))
    # a small pixel budget splits a full-batch step into several loads holding the same windows
    full = {**plan, "batch_size": 0, "crops_per_image": 1}
    pieces = list(StepStream(collection, sizes, plan=full, crop=0, max_side=None, start=(0, 0), stop=1, load_pixels=3000))
    assert len(pieces) > 1 and [p.last for p in pieces].count(True) == 1
    assert sum(len(b) for p in pieces for b in p.batches) == len(collection)


def test_list_file_and_shards_hold_the_same_images(photos, shards, tmp_path):
    folder = open_collection(photos)
    listing = tmp_path / "list.txt"
    listing.write_text("# my photos\n\n" + "\n".join(f"../{photos.name}/{p.name}" for p in sorted(photos.iterdir())[::-1]))
    listed = open_collection(listing)
    assert listed.kind == "list" and [r.name for r in listed.refs] == [str(p.resolve()) for p in sorted(photos.iterdir())]
    tars = open_collection(str(shards / "part-{000..002}.tar"))
    assert tars.kind == "shards" and len(tars) == len(folder) == 6 and [r.shard for r in tars.refs] == [0, 0, 1, 1, 2, 2]
    for a, b in zip(folder.refs, tars.refs):
        assert b.name.endswith(Path(a.name).name)
        assert torch.equal(decode_image(a)[0], decode_image(b)[0])
    assert folder.digest() != tars.digest() and folder.digest() == open_collection(photos).digest()


def test_missing_sources_are_one_line_errors(shards, tmp_path):
    with pytest.raises(ImageError, match="no such"):
        open_collection(tmp_path / "nowhere")
    with pytest.raises(FeatkitError, match="7 of the 10 shards"):
        open_collection(str(shards / "part-{000..009}.tar"))
    (tmp_path / "broken.tar").write_bytes(b"not a tar at all" * 40)
    with pytest.raises(ImageError, match="broken.tar"):
        open_collection(tmp_path / "broken.tar")


def test_header_scan_finds_sizes_and_verify_finds_truncated_files(photos, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    good = folder / "good.jpg"
    with Image.open(find_images(sample_images())[0]) as img:
        img.convert("RGB").resize((400, 300)).save(good)
    (folder / "cut.jpg").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (folder / "text.png").write_text("not a picture")
    collection = open_collection(folder)
    usable, sizes, skipped = scan_sizes(collection, max_side=20)
    with Image.open(good) as img:
        w, h = img.size
    assert [collection.refs[i].name.rsplit("/", 1)[-1] for i in usable] == ["cut.jpg", "good.jpg"]
    assert sizes[1] == tuple(decode_image(folder / "good.jpg", max_side=20)[0].shape[-2:]) and max(sizes[1]) == 20
    assert [n.rsplit("/", 1)[-1] for n, _ in skipped] == ["text.png"] and (w, h) != (0, 0)
    usable, _, skipped = scan_sizes(collection, verify=True)
    assert sorted(n.rsplit("/", 1)[-1] for n, _ in skipped) == ["cut.jpg", "text.png"]


def test_under_torchrun_each_rank_reads_only_its_own_shards(shards):
    collection = open_collection(str(shards / "part-{000..002}.tar"))
    _, sizes, _ = scan_sizes(collection)
    plan = {"seed": 0, "batch_size": 6, "crops_per_image": 1, "epoch_windows": 0}
    streams = [StepStream(collection, sizes, plan=plan, crop=8, max_side=None, start=(0, 0), stop=1, rank=r, world=2)
               for r in range(2)]  # fmt: skip
    step = plan_epoch(len(collection), 0, **plan)[0]
    mine = [s.mine(step) for s in streams]
    assert sorted(w.item for part in mine for w in part) == sorted(w.item for w in step)
    assert {collection.refs[w.item].shard for w in mine[0]} == {0, 2} and {collection.refs[w.item].shard for w in mine[1]} == {1}


def test_jpeg_draft_decodes_close_to_a_full_decode(tmp_path):
    photo = find_images(sample_images())[0]
    with Image.open(photo) as img:
        img.convert("RGB").resize((1024, 768)).save(tmp_path / "big.jpg", quality=95)
    fast = decode_image(tmp_path / "big.jpg", max_side=128)[0]
    with Image.open(tmp_path / "big.jpg") as img:
        img.load()
        exact = img.resize((128, 96), Image.Resampling.LANCZOS)
    exact = torch.from_numpy(__import__("numpy").asarray(exact, dtype="float32")).permute(2, 0, 1) / 127.5 - 1
    assert fast.shape == exact.shape == (3, 96, 128)
    assert (fast - exact).abs().mean() < 0.02


@pytest.mark.parametrize("mode", ["RGB", "L", "P", "RGBA", "CMYK", "I;16", "I"])
def test_windows_are_exactly_the_slices_of_the_decoded_image(tmp_path, mode):
    from featkit.data.images import decode_windows

    rng = __import__("numpy").random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (37, 45, 3), dtype="uint8"))
    if mode in ("I;16", "I"):
        img = Image.fromarray((rng.integers(0, 300 if mode == "I" else 65536, (37, 45))).astype("int32" if mode == "I" else "uint16"))
    else:
        img = rgb.convert(mode)
    path = tmp_path / ("x.tif" if mode in ("CMYK", "I") else "x.png")
    img.save(path)
    whole = decode_image(path)[0]
    boxes = [(0, 0, 16, 16), (21, 29, 16, 16), (3, 7, 37 - 3, 10)]
    for (top, left, h, w), window in zip(boxes, decode_windows(path, lambda size: boxes)):
        assert torch.equal(window, whole[:, top : top + h, left : left + w])

"""featkit.data: decoding any image to RGB in [-1, 1], skipping bad files, batching by size."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from featkit.data.images import find_images, iter_batches, load_image, load_images, size_buckets
from featkit.data.samples import sample_images
from featkit.errors import ImageError


def test_sample_images_are_about_twenty_real_photos():
    records, skipped = load_images(find_images(sample_images()), max_side=32)
    assert len(records) >= 20 and not skipped


@pytest.mark.parametrize(
    "mode, value",
    [("L", 128), ("P", None), ("RGBA", (255, 0, 0, 0)), ("I;16", 65535), ("CMYK", (0, 0, 0, 0))],
)
def test_every_mode_becomes_rgb_in_range(tmp_path, mode, value):
    img = Image.new(mode, (7, 5)) if value is None else Image.new(mode, (7, 5), value)
    path = tmp_path / ("x.tif" if mode in ("I;16", "CMYK") else "x.png")
    img.save(path)
    x = load_image(path)
    assert x.shape == (3, 5, 7) and x.dtype == torch.float32
    assert float(x.min()) >= -1 and float(x.max()) <= 1
    if mode == "RGBA":  # fully transparent red is composited over white
        assert torch.allclose(x, torch.ones_like(x))
    if mode == "I;16":
        assert torch.allclose(x, torch.ones_like(x))


def test_pixel_values_map_exactly_to_minus_one_one(tmp_path):
    """Eq. 4's scaling: an 8-bit value v becomes 2 v / 255 - 1 and a 16-bit one 2 v / 65535 - 1,
    per channel, in float32, in a contiguous (3, H, W) tensor."""
    rgb = np.arange(256 * 3, dtype=np.uint16).reshape(16, 16, 3) % 256
    rgb[..., 1] = 255 - rgb[..., 1]
    Image.fromarray(rgb.astype(np.uint8)).save(tmp_path / "rgb.png")
    grey16 = (np.arange(16 * 16, dtype=np.uint32).reshape(16, 16) * 257).astype(np.uint16)
    Image.fromarray(grey16).save(tmp_path / "grey16.png")
    for name, values, top in (("rgb.png", rgb.transpose(2, 0, 1), 255.0), ("grey16.png", np.stack([grey16] * 3), 65535.0)):
        x = load_image(tmp_path / name)
        expected = torch.from_numpy(values.astype(np.float64) * 2 / top - 1).float()
        assert x.dtype == torch.float32 and x.is_contiguous() and x.shape == expected.shape
        assert torch.allclose(x, expected, rtol=0, atol=1e-6), name
    assert float(load_image(tmp_path / "rgb.png").min()) == -1.0 and float(load_image(tmp_path / "rgb.png").max()) == 1.0


def test_exif_orientation_is_applied(tmp_path):
    arr = np.zeros((4, 6, 3), np.uint8)
    arr[0, :] = 255  # top row white
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    img.save(tmp_path / "r.jpg", exif=exif, quality=100)
    x = load_image(tmp_path / "r.jpg")
    assert x.shape == (3, 6, 4)
    assert x[:, :, -1].mean() > 0.8 and x[:, :, 0].mean() < -0.8  # white row is now the right column
    records, _ = load_images([tmp_path / "r.jpg"])
    assert records[0].original_size == (4, 6)


def test_max_side_downscales_only(tmp_path):
    Image.new("RGB", (40, 20)).save(tmp_path / "a.png")
    assert load_image(tmp_path / "a.png", max_side=10).shape == (3, 5, 10)
    assert load_image(tmp_path / "a.png", max_side=100).shape == (3, 20, 40)


def test_bad_files_are_reported_with_reasons(tmp_path):
    Image.new("RGB", (30, 30), (10, 20, 30)).save(tmp_path / "good.png")
    (tmp_path / "text.png").write_text("hello")
    data = (tmp_path / "good.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    Image.new("RGB", (300, 300)).save(tmp_path / "big.png")
    records, skipped = load_images(find_images(tmp_path), max_pixels=300 * 299)
    assert [r.path.name for r in records] == ["good.png"]
    reasons = {p.name: why for p, why in skipped}
    assert set(reasons) == {"text.png", "cut.png", "big.png"}
    assert "not an image" in reasons["text.png"] and "decompression bomb" in reasons["big.png"]
    with pytest.raises(ImageError, match="no such"):
        find_images(tmp_path / "missing")


def test_find_images_order_and_what_it_skips(tmp_path):
    """Recursive, in Path order (what ``sorted(rglob)`` gives), image suffixes in any case; hidden
    files and folders, other suffixes, broken links and symlinked folders are left out."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    for rel in ("b.png", "A.JPG", "a/x.png", "a.b/y.png", "a-c/z.tif", "a/deep/er/w.png", "notes.txt",
                ".hidden.png", ".cache/v.png", "a/.git/u.png"):  # fmt: skip
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")
    (outside / "sub").mkdir(parents=True)
    (outside / "o.png").write_bytes(b"")
    (root / "linked").symlink_to(outside, target_is_directory=True)
    (root / "a" / "link.png").symlink_to(outside / "o.png")
    (root / "broken.png").symlink_to(tmp_path / "nothing.png")
    expected = [root / rel for rel in ("A.JPG", "a/deep/er/w.png", "a/link.png", "a/x.png", "a-c/z.tif", "a.b/y.png", "b.png")]
    assert find_images(root) == expected
    assert expected == sorted(expected)


def test_size_buckets_never_mix_sizes():
    sizes = [(4, 4), (2, 3), (4, 4), (4, 4), (2, 3)]
    batches = size_buckets(sizes, batch_size=2)
    assert sorted(i for b in batches for i in b) == list(range(5))
    assert all(len({sizes[i] for i in b}) == 1 and len(b) <= 2 for b in batches)
    images = [torch.zeros(3, *s) for s in sizes]
    from featkit.data.images import ImageRecord

    records = [ImageRecord(None, im, (s[1], s[0])) for im, s in zip(images, sizes)]
    assert sorted(b.shape[0] for b in iter_batches(records, None)) == [2, 3]

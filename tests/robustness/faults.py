"""A folder of real photos salted with every kind of bad or unusual image file.

``make_fault_folder(root, n_good)`` writes ``n_good`` small crops of the sample photos plus the
cases issue 6 lists, and returns which names must be skipped and which must be used.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from featkit.data.images import find_images
from featkit.data.samples import sample_images

#: Files that must be skipped, with a word their reason must contain.
BAD = {
    "truncated.jpg": "decode",
    "empty.jpg": "",
    "text.png": "not an image",
    "bomb.png": "bomb",
}
#: Unusual but valid files that must be used.
ODD = ("cmyk.jpg", "deep16.png", "palette_alpha.png", "animated.gif", "one_pixel.png", "exif6.jpg", "exif6_rotated.png")


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width x height`` but holds one tiny IDAT."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def good_crops(n: int, size: int = 40) -> list[Image.Image]:
    """``n`` distinct RGB crops of the sample photos (deterministic)."""
    photos = [Image.open(p).convert("RGB") for p in find_images(sample_images())]
    rng = np.random.default_rng(0)
    crops = []
    for i in range(n):
        photo = photos[i % len(photos)]
        w, h = photo.size
        x, y = int(rng.integers(0, w - size)), int(rng.integers(0, h - size))
        crops.append(photo.crop((x, y, x + size, y + size)))
    return crops


def make_fault_folder(root: Path, n_good: int = 100) -> dict[str, list[str]]:
    """Write the fault folder; returns ``{"bad": [...], "odd": [...], "good": [...]}`` names."""
    root.mkdir(parents=True, exist_ok=True)
    crops = good_crops(n_good + 1)
    good = []
    for i, crop in enumerate(crops[:n_good]):
        name = f"photo_{i:03d}.png"
        crop.save(root / name)
        good.append(name)

    base = crops[n_good]
    buf = io.BytesIO()
    base.resize((64, 48)).save(buf, "JPEG", quality=90)
    (root / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (root / "empty.jpg").write_bytes(b"")
    (root / "text.png").write_text("this is not a picture\n")
    (root / "bomb.png").write_bytes(_png_header_only(30000, 30000))

    base.convert("CMYK").save(root / "cmyk.jpg", "JPEG")
    grey16 = (np.asarray(base.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    Image.fromarray(grey16).save(root / "deep16.png")
    palette = base.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    palette.save(root / "palette_alpha.png", transparency=0)
    frames = [base, base.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    frames[0].save(root / "animated.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    Image.new("RGB", (1, 1), (200, 30, 30)).save(root / "one_pixel.png")

    # EXIF orientation 6: stored pixels P, displayed rotated 90 degrees clockwise.
    stored = base.resize((40, 24))
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(root / "exif6.jpg", "JPEG", exif=exif.tobytes(), quality=95)
    with Image.open(root / "exif6.jpg") as decoded:
        raw = np.asarray(decoded.convert("RGB"))
    Image.fromarray(np.ascontiguousarray(np.rot90(raw, k=-1))).save(root / "exif6_rotated.png")
    return {"bad": sorted(BAD), "odd": list(ODD), "good": good}

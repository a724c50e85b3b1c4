"""One image file: finding images, reading their headers, and decoding them safely, whole or as
windows; grouping images of any size into equal-size batches.

Every image becomes an RGB float tensor of shape :math:`(3, H, W)` in [-1, 1] (the range of
the CAE's tanh output, section 4): EXIF orientation applied, grey and palette expanded,
transparency composited over white, 16-bit and CMYK converted. A file Pillow cannot decode,
a truncated file or a decompression bomb raises :class:`~featkit.errors.ImageError` with the
reason, so callers can skip it and record why.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Union

import numpy as np
import torch
from PIL import Image, ImageFile, ImageOps

from featkit.errors import ImageError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "ImageRecord",
    "ImageRef",
    "ImageSource",
    "decode_image",
    "decode_windows",
    "find_images",
    "image_suffixes",
    "iter_batches",
    "load_image",
    "load_images",
    "probe_image",
    "size_buckets",
    "skip_reason",
]


#: Images with more pixels than this are refused as decompression bombs (Pillow's own limit).
DEFAULT_MAX_PIXELS = 89_478_485
ImageFile.LOAD_TRUNCATED_IMAGES = False


def image_suffixes() -> set[str]:
    """Lower-case file suffixes (``.jpg``, ...) that Pillow reads as images."""
    Image.init()
    return {ext.lower() for ext in Image.registered_extensions()}


def find_images(root: str | os.PathLike) -> list[Path]:
    """Files under ``root`` (recursively, sorted) whose suffix Pillow registers as an image.

    ``root`` may also be a single file. Hidden files and folders are ignored.

    Raises:
        ImageError: if ``root`` does not exist.
    """
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise ImageError(f"no such file or folder: {root}")
    suffixes = image_suffixes()
    found: list[Path] = []
    folders = [str(root)]
    while folders:  # os.scandir: file types come with the listing, no stat per file
        try:
            entries = list(os.scandir(folders.pop()))
        except PermissionError:
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                folders.append(entry.path)
            elif os.path.splitext(entry.name)[1].lower() in suffixes and entry.is_file():
                found.append(Path(entry.path))
    return sorted(found)


def _to_network_range(img: Image.Image) -> np.ndarray:
    """Any Pillow mode -> float32 :math:`(3, H, W)` in [-1, 1]: ``2 * v / top - 1`` per pixel,
    ``top`` being 255 for 8-bit modes and 65535 for 16-bit ones.

    Computed in place on one array (a cast-and-transpose copy, then three passes), so small
    images cost microseconds and large ones no extra full-size buffers."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        grey = np.asarray(img, dtype=np.float32)
        top = 65535.0 if img.mode.startswith("I;16") or grey.max(initial=0) > 255 else 255.0
        out = np.empty((3, *grey.shape), dtype=np.float32)
        out[:] = np.clip(grey / top, 0.0, 1.0)
    else:
        if img.mode == "P":
            img = img.convert("RGBA")
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "RGB" and "transparency" in img.info):
            rgba = img.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            img = Image.alpha_composite(background, rgba)
        rgb = np.asarray(img if img.mode == "RGB" else img.convert("RGB"))
        out = np.empty((3, *rgb.shape[:2]), dtype=np.float32)
        out[:] = rgb.transpose(2, 0, 1)
        out /= np.float32(255.0)
    out *= np.float32(2.0)
    out -= np.float32(1.0)
    return out


@dataclass(frozen=True, slots=True)
class ImageRef:
    """Where one image's encoded bytes live: a plain file, or a member of a tar shard.

    Attributes:
        name: what reports and manifests call it: the file's path, or ``shard.tar:member``.
        path: the file to open (the tar shard for a member).
        offset: byte offset of the member's data inside ``path``; -1 for a plain file.
        size: byte size of the member; -1 for a plain file.
        shard: index of the tar shard in its collection (which process reads it under
            ``torchrun``); -1 for a plain file.
    """

    name: str
    path: str
    offset: int = -1
    size: int = -1
    shard: int = -1

    def open(self) -> BinaryIO:
        """A binary stream of the encoded image (the caller closes it).

        Raises:
            FileNotFoundError: the file or shard is gone.
        """
        if self.offset < 0:
            return open(self.path, "rb")
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read(self.size)
        if len(data) != self.size:
            raise OSError(f"{self.path} is shorter than its tar header says (truncated shard)")
        return io.BytesIO(data)


ImageSource = Union[str, os.PathLike, ImageRef]


def _as_ref(source: ImageSource) -> ImageRef:
    return source if isinstance(source, ImageRef) else ImageRef(str(source), str(source))


def load_image(source: ImageSource, *, max_side: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> torch.Tensor:
    """Decode one image to RGB in [-1, 1] (see :func:`decode_image`, which also gives its size).

    Args:
        source: an image file Pillow can read (first frame of animations), or an :class:`ImageRef`.
        max_side: if given, downscale (never upscale) so the longer side is at most this.
        max_pixels: refuse images whose header declares more pixels (decompression bombs).

    Returns:
        Float32 tensor of shape :math:`(3, H, W)` with values in [-1, 1].

    Raises:
        ImageError: naming the file and why it cannot be used.
    """
    return decode_image(source, max_side=max_side, max_pixels=max_pixels)[0]


def _scaled_size(size: tuple[int, int], max_side: int | None) -> tuple[int, int]:
    """``(w, h)`` after downscaling so the longer side is at most ``max_side`` (never up)."""
    if max_side is None or max(size) <= max_side:
        return size
    scale = max_side / max(size)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _displayed_size(img: Image.Image) -> tuple[int, int]:
    """``(w, h)`` of an opened image after its EXIF orientation, without decoding pixels
    (a PNG's EXIF is read only when it comes before the image data, as Pillow's header parse
    finds it; ``getexif`` would decode the whole image to look further)."""
    w, h = img.size
    try:
        if img.format == "PNG":
            exif = Image.Exif()
            if img.info.get("exif"):
                exif.load(img.info["exif"])
        else:
            exif = img.getexif()
        orientation = exif.get(0x0112, 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block only loses the rotation, as in exif_transpose
        orientation = 1
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def _opened(source: ImageSource, max_pixels: int, read: Callable[[ImageRef, Image.Image], Any]) -> Any:
    """Open ``source`` with Pillow, refuse bombs, and apply ``read``; every failure becomes an
    :class:`ImageError` naming the image and the reason."""
    ref = _as_ref(source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with ref.open() as fh, Image.open(fh) as img:
                w, h = img.size
                if w * h > max_pixels:
                    raise ImageError(
                        f"{ref.name}: {w} x {h} pixels is over the limit of {max_pixels} (possible decompression bomb)"
                    )
                return read(ref, img)
    except ImageError:
        raise
    except FileNotFoundError as exc:
        raise ImageError(f"{ref.name}: no such file") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{ref.name}: possible decompression bomb ({exc})") from exc
    except Image.UnidentifiedImageError as exc:
        raise ImageError(f"{ref.name}: not an image Pillow can read") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"{ref.name}: cannot decode ({exc})") from exc


def _check_data(img: Image.Image) -> None:
    """Read through an opened image's data without a full decode: PNG chunk checksums
    (``verify``), a JPEG at 1/8 scale (its whole entropy-coded stream, but almost no inverse
    DCT work), any other format decoded."""
    if img.format == "PNG":
        img.verify()
        return
    if img.format == "JPEG":
        img.draft(img.mode, (1, 1))
    img.load()


def probe_image(
    source: ImageSource, *, max_side: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS, verify: bool = False
) -> tuple[int, int]:
    """The ``(width, height)`` :func:`decode_image` would return, read from the header alone
    (no pixels decoded): what a run's data summary and plan use.

    Args:
        source: as for :func:`decode_image`.
        max_side: as for :func:`decode_image`.
        max_pixels: as for :func:`decode_image`.
        verify: also read through the data (:func:`_check_data`), so truncated and corrupt
            files fail here, as ``--strict`` needs; about 1/10 of a full decode for a JPEG.

    Raises:
        ImageError: the file is missing, not an image Pillow knows, or a decompression bomb;
            with ``verify``, also when its data is broken.
    """

    def read(ref: ImageRef, img: Image.Image) -> tuple[int, int]:
        size = _scaled_size(_displayed_size(img), max_side)
        if verify:
            _check_data(img)
        return size

    return _opened(source, max_pixels, read)


def _displayed(img: Image.Image, max_side: int | None) -> tuple[Image.Image, tuple[int, int]]:
    """An opened image decoded as the network sees it (first frame, EXIF orientation applied,
    downscaled to ``max_side``), and the ``(w, h)`` the file displays at."""
    img.seek(0)
    stored = img.size
    if max_side is not None and max(stored) > max_side and img.format == "JPEG":
        scale = max_side / max(stored)  # the longer side is the same in either orientation
        img.draft(img.mode, (math.ceil(stored[0] * scale), math.ceil(stored[1] * scale)))
    loaded = img.size
    img.load()
    img = ImageOps.exif_transpose(img)
    original_size = stored[::-1] if img.size != loaded else stored  # EXIF turned it by 90 degrees
    target = _scaled_size(original_size, max_side)
    if img.size != target:
        img = img.convert("RGB") if img.mode in ("P", "CMYK") else img
        img = img.resize(target, Image.Resampling.LANCZOS)
    return img, original_size


def decode_image(
    source: ImageSource, *, max_side: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[torch.Tensor, tuple[int, int]]:
    """:func:`load_image` plus the ``(width, height)`` the file displays at (after EXIF
    orientation, before any ``max_side`` resize), from one decode.

    When ``max_side`` asks for a smaller image, JPEGs are decoded at a reduced scale first
    (Pillow's ``draft``: 1/2, 1/4 or 1/8 in the DCT, never below the target size), then
    resized exactly; a 12-megapixel photo for ``max_side=512`` decodes about 10x faster.

    Raises:
        ImageError: naming the file and why it cannot be used.
    """

    def read(ref: ImageRef, img: Image.Image) -> tuple[np.ndarray, tuple[int, int]]:
        img, original_size = _displayed(img, max_side)
        return _to_network_range(img), original_size

    array, original_size = _opened(source, max_pixels, read)
    return torch.from_numpy(array), original_size


def decode_windows(
    source: ImageSource,
    boxes: Callable[[tuple[int, int]], Sequence[tuple[int, int, int, int]]],
    *,
    max_side: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> list[torch.Tensor]:
    """Windows of one image, each exactly ``decode_image(...)[0][:, top:top+h, left:left+w]``,
    converted to floats window by window: four 128 px crops of a 1024 x 768 photo convert
    1/12 of its pixels.

    Args:
        source: as for :func:`decode_image`.
        boxes: given the decoded ``(H, W)``, the ``(top, left, h, w)`` of each window.
        max_side: as for :func:`decode_image`.
        max_pixels: as for :func:`decode_image`.

    Returns:
        :math:`(3, h_k, w_k)` tensors in [-1, 1], in the order of ``boxes``.

    Raises:
        ImageError: naming the file and why it cannot be used.
    """

    def read(ref: ImageRef, img: Image.Image) -> list[np.ndarray]:
        img, _ = _displayed(img, max_side)
        windows = boxes((img.size[1], img.size[0]))
        if img.mode in ("I", "F"):  # their scale depends on the whole image's maximum
            whole = _to_network_range(img)
            return [whole[:, top : top + h, left : left + w] for top, left, h, w in windows]
        return [_to_network_range(img.crop((left, top, left + w, top + h))) for top, left, h, w in windows]

    return [torch.from_numpy(window) for window in _opened(source, max_pixels, read)]


@dataclass(frozen=True)
class ImageRecord:
    """A decoded image and where it came from.

    Attributes:
        path: the file.
        image: :math:`(3, H, W)` in [-1, 1].
        original_size: ``(width, height)`` of the file before any ``max_side`` resize.
    """

    path: Path
    image: torch.Tensor
    original_size: tuple[int, int]


def skip_reason(error: ImageError, name: str) -> str:
    """The reason in ``error`` without the image's name it starts with (``"name: reason"``),
    as skip lists record it beside the name."""
    return str(error).removeprefix(f"{name}: ")


def load_images(
    paths: Iterable[str | os.PathLike], *, max_side: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[list[ImageRecord], list[tuple[Path, str]]]:
    """Decode many images, separating the usable from the skipped.

    Returns:
        ``(records, skipped)`` where ``skipped`` holds ``(path, reason)`` for every file that
        could not be used.
    """
    records, skipped = [], []
    for p in paths:
        p = Path(p)
        try:
            image, original_size = decode_image(p, max_side=max_side, max_pixels=max_pixels)
            records.append(ImageRecord(p, image, original_size))
        except ImageError as exc:
            skipped.append((p, skip_reason(exc, str(p))))
    return records, skipped


def size_buckets(sizes: Sequence[tuple[int, int]], batch_size: int | None) -> list[list[int]]:
    """Group indices of equally sized images into batches (a batch never mixes sizes).

    Args:
        sizes: ``(H, W)`` per image.
        batch_size: most images per batch; ``None`` puts each whole size group in one batch.

    Returns:
        Lists of indices, in first-seen order of sizes.

    Examples:
        >>> size_buckets([(4, 4), (2, 3), (4, 4)], batch_size=None)
        [[0, 2], [1]]
    """
    groups: dict[tuple[int, int], list[int]] = {}
    for i, size in enumerate(sizes):
        groups.setdefault(tuple(size), []).append(i)
    batches = []
    for members in groups.values():
        step = batch_size or len(members)
        batches += [members[i : i + step] for i in range(0, len(members), step)]
    return batches


def iter_batches(records: Sequence[ImageRecord], batch_size: int | None) -> Iterator[torch.Tensor]:
    """Stacked :math:`(B, 3, H, W)` batches of equally sized records, see :func:`size_buckets`."""
    for batch in size_buckets([tuple(r.image.shape[-2:]) for r in records], batch_size):
        yield torch.stack([records[i].image for i in batch])

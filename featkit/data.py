"""Finding and decoding images safely, and batching images of any size.

Every image becomes an RGB float tensor of shape :math:`(3, H, W)` in [-1, 1] (the range of
the CAE's tanh output, section 4): EXIF orientation applied, grey and palette expanded,
transparency composited over white, 16-bit and CMYK converted. A file Pillow cannot decode,
a truncated file or a decompression bomb raises :class:`~featkit.errors.ImageError` with the
reason, so callers can skip it and record why.
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFile, ImageOps

from featkit.errors import ImageError
from featkit.io import atomic_path

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "Crop",
    "ImageRecord",
    "epoch_plan",
    "decode_image",
    "find_images",
    "gather_crops",
    "iter_batches",
    "load_image",
    "load_images",
    "sample_images",
    "size_buckets",
]

#: Images with more pixels than this are refused as decompression bombs (Pillow's own limit).
DEFAULT_MAX_PIXELS = 89_478_485

ImageFile.LOAD_TRUNCATED_IMAGES = False


def _image_suffixes() -> set[str]:
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
    suffixes = _image_suffixes()
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


def load_image(
    path: str | os.PathLike, *, max_side: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS
) -> torch.Tensor:
    """Decode one image to RGB in [-1, 1] (see :func:`decode_image`, which also gives its size).

    Args:
        path: an image file Pillow can read (first frame of animations).
        max_side: if given, downscale (never upscale) so the longer side is at most this.
        max_pixels: refuse images whose header declares more pixels (decompression bombs).

    Returns:
        Float32 tensor of shape :math:`(3, H, W)` with values in [-1, 1].

    Raises:
        ImageError: naming the file and why it cannot be used.
    """
    return decode_image(path, max_side=max_side, max_pixels=max_pixels)[0]


def decode_image(
    path: str | os.PathLike, *, max_side: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[torch.Tensor, tuple[int, int]]:
    """:func:`load_image` plus the ``(width, height)`` the file displays at (after EXIF
    orientation, before any ``max_side`` resize), from one decode.

    Raises:
        ImageError: naming the file and why it cannot be used.
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                w, h = img.size
                if w * h > max_pixels:
                    raise ImageError(
                        f"{path}: {w} x {h} pixels is over the limit of {max_pixels} (possible decompression bomb)"
                    )
                img.seek(0)
                img.load()
                img = ImageOps.exif_transpose(img)
                original_size = img.size
                if max_side is not None and max(img.size) > max_side:
                    scale = max_side / max(img.size)
                    size = (max(1, round(img.size[0] * scale)), max(1, round(img.size[1] * scale)))
                    img = img.convert("RGB") if img.mode in ("P", "CMYK") else img
                    img = img.resize(size, Image.Resampling.LANCZOS)
                array = _to_network_range(img)
    except ImageError:
        raise
    except FileNotFoundError as exc:
        raise ImageError(f"{path}: no such file") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{path}: possible decompression bomb ({exc})") from exc
    except Image.UnidentifiedImageError as exc:
        raise ImageError(f"{path}: not an image Pillow can read") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"{path}: cannot decode ({exc})") from exc
    return torch.from_numpy(array), original_size


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
            skipped.append((p, str(exc).removeprefix(f"{p}: ")))
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


#: Real photos shipped inside scikit-image (file names) and scikit-learn (load_sample_images).
_SKIMAGE_PHOTOS = (
    "astronaut.png", "brick.png", "camera.png", "chelsea.png", "clock_motion.png", "coffee.png",
    "coins.png", "grass.png", "gravel.png", "hubble_deep_field.jpg", "ihc.png", "microaneurysms.png",
    "moon.png", "motorcycle_left.png", "motorcycle_right.png", "page.png", "retina.jpg", "rocket.jpg",
    "text.png",
)  # fmt: skip
_SKLEARN_PHOTOS = ("china.jpg", "flower.jpg")


def _cache_dir() -> Path:
    base = os.environ.get("FEATKIT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "featkit")
    return Path(base)


def sample_images() -> Path:
    """A folder holding the ~20 real photos that scikit-image and scikit-learn ship.

    The files are copied once into ``$FEATKIT_CACHE/samples`` (default
    ``~/.cache/featkit/samples``); nothing is downloaded.

    Returns:
        The folder's path.
    """
    import skimage
    import sklearn.datasets

    sources = [Path(skimage.__file__).parent / "data" / n for n in _SKIMAGE_PHOTOS]
    sources += [Path(sklearn.datasets.__file__).parent / "images" / n for n in _SKLEARN_PHOTOS]
    folder = _cache_dir() / "samples"
    folder.mkdir(parents=True, exist_ok=True)
    for src in sources:
        dst = folder / src.name
        if src.exists() and not dst.exists():
            with atomic_path(dst) as tmp:
                shutil.copyfile(src, tmp)
    return folder


def iter_batches(records: Sequence[ImageRecord], batch_size: int | None) -> Iterator[torch.Tensor]:
    """Stacked :math:`(B, 3, H, W)` batches of equally sized records, see :func:`size_buckets`."""
    for batch in size_buckets([tuple(r.image.shape[-2:]) for r in records], batch_size):
        yield torch.stack([records[i].image for i in batch])


@dataclass(frozen=True)
class Crop:
    """A window of one image: rows ``top:top+height``, columns ``left:left+width``."""

    index: int
    top: int
    left: int
    height: int
    width: int


def epoch_plan(
    sizes: Sequence[tuple[int, int]],
    *,
    batch_size: int,
    crop: int,
    crops_per_image: int = 1,
    generator: torch.Generator,
) -> list[list[Crop]]:
    """The optimisation steps of one epoch: which window of which image each step sees.

    Every image contributes ``crops_per_image`` windows (or itself, whole, once when
    ``crop`` is 0), in a random order drawn from ``generator``; consecutive windows form a
    step of ``batch_size`` (0: the whole epoch is one full-batch step, as in the paper).
    A crop never exceeds its image: images smaller than ``crop`` give smaller windows, and
    :func:`gather_crops` batches them by size.

    Args:
        sizes: ``(H, W)`` per image.
        batch_size: windows per step; 0 for full batch.
        crop: side of the square random windows; 0 for whole images.
        crops_per_image: windows per image per epoch (ignored for whole images).
        generator: the only source of randomness, so an epoch can be replayed exactly.

    Returns:
        One list of :class:`Crop` per step.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> plan = epoch_plan([(8, 8), (6, 9)], batch_size=0, crop=0, generator=g)
        >>> sorted((c.index, c.height, c.width) for c in plan[0])
        [(0, 8, 8), (1, 6, 9)]
    """
    if batch_size < 0 or crop < 0 or crops_per_image < 1:
        raise ValueError(
            f"batch_size and crop must be >= 0 and crops_per_image >= 1, got {batch_size}, {crop}, {crops_per_image}"
        )
    windows = []
    repeats = crops_per_image if crop else 1
    for index, (h, w) in enumerate(sizes):
        for _ in range(repeats):
            if not crop:
                windows.append(Crop(index, 0, 0, h, w))
                continue
            ch, cw = min(crop, h), min(crop, w)
            top = int(torch.randint(h - ch + 1, (1,), generator=generator))
            left = int(torch.randint(w - cw + 1, (1,), generator=generator))
            windows.append(Crop(index, top, left, ch, cw))
    order = torch.randperm(len(windows), generator=generator).tolist()
    windows = [windows[i] for i in order]
    step = batch_size or len(windows)
    return [windows[i : i + step] for i in range(0, len(windows), step)]


def gather_crops(images: Sequence[torch.Tensor], crops: Sequence[Crop]) -> list[torch.Tensor]:
    """Cut ``crops`` out of ``images`` and stack equally sized windows together.

    Args:
        images: :math:`(3, H_i, W_i)` tensors.
        crops: windows, e.g. one step of :func:`epoch_plan`.

    Returns:
        :math:`(B_k, 3, h_k, w_k)` batches, one per distinct window size, in first-seen order;
        together they hold every window once.
    """
    windows = [images[c.index][:, c.top : c.top + c.height, c.left : c.left + c.width] for c in crops]
    return [torch.stack([windows[i] for i in bucket]) for bucket in size_buckets([(c.height, c.width) for c in crops], None)]

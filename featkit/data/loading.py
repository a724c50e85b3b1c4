"""Decoding a collection in order, in DataLoader worker processes when there are spare cores:
what extraction and search read (:func:`image_batches`), and the loader training's step stream
runs in (:func:`loader`)."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset

from featkit.data.images import ImageRef, decode_image, skip_reason
from featkit.errors import FeatkitError, ImageError

__all__ = ["ImageItems", "LoadedImage", "default_workers", "image_batches", "loader"]


def default_workers() -> int:
    """Decoding processes worth starting: none on a 2-core machine (a worker there only
    competes with the network for the cores), else half the cores, at most 8."""
    cores = os.cpu_count() or 1
    return 0 if cores <= 2 else min(8, cores // 2)


def _unbatched(item):
    return item


def loader(dataset: Dataset, workers: int) -> DataLoader:
    """A DataLoader handing over ``dataset``'s items one by one, in order, decoded by
    ``workers`` processes (0: in this process)."""
    if workers < 0:
        raise FeatkitError(f"workers must be >= 0, got {workers}")
    return DataLoader(dataset, batch_size=None, num_workers=workers, collate_fn=_unbatched)


@dataclass(frozen=True)
class LoadedImage:
    """One image of a collection after decoding.

    Attributes:
        index: position in the list being read.
        ref: where it came from.
        image: :math:`(3, H, W)` in [-1, 1], or ``None`` when it could not be used.
        original_size: ``(width, height)`` of the file, or ``None``.
        reason: why the image was skipped, or ``None``.
    """

    index: int
    ref: ImageRef
    image: torch.Tensor | None
    original_size: tuple[int, int] | None
    reason: str | None

    @property
    def path(self) -> str:
        """The name manifests record (a file path, or ``shard.tar:member``)."""
        return self.ref.name


class ImageItems(Dataset):
    """Map-style dataset of lists of decoded images, ``batch_size`` per item, never raising
    for a bad image: it comes back as a :class:`LoadedImage` with a ``reason``.

    Args:
        refs: the images.
        batch_size: images per item.
        max_side: downscale so the longer side is at most this (never upscale); ``None``
            keeps each image's own resolution.
    """

    def __init__(self, refs: Sequence[ImageRef], batch_size: int, max_side: int | None = None) -> None:
        if batch_size < 1:
            raise FeatkitError(f"batch_size must be >= 1, got {batch_size}")
        self.refs, self.batch_size, self.max_side = list(refs), batch_size, max_side

    def __len__(self) -> int:
        return math.ceil(len(self.refs) / self.batch_size)

    def __getitem__(self, item: int) -> list[LoadedImage]:
        first = item * self.batch_size
        return [self._decode(i) for i in range(first, min(first + self.batch_size, len(self.refs)))]

    def _decode(self, index: int) -> LoadedImage:
        ref = self.refs[index]
        try:
            image, original_size = decode_image(ref, max_side=self.max_side)
        except ImageError as exc:
            return LoadedImage(index, ref, None, None, skip_reason(exc, ref.name))
        return LoadedImage(index, ref, image, original_size, None)


def image_batches(
    images: Sequence[ImageRef | str | os.PathLike], *, batch_size: int = 16, workers: int = 0, max_side: int | None = None
) -> Iterator[list[LoadedImage]]:
    """Decode images in ``workers`` background processes, in order, ``batch_size`` at a time.

    Batches are lists because images keep their own sizes. Memory holds at most a few
    batches whatever ``len(images)``.
    """
    refs = [ref if isinstance(ref, ImageRef) else ImageRef(str(ref), str(ref)) for ref in images]
    yield from loader(ImageItems(refs, batch_size, max_side), workers)

"""One streaming image pipeline for training and extraction, from 20 photos to millions.

A collection is a list of :class:`~featkit.data.ImageRef` (where each image's bytes are),
never of pixels. It comes from any of:

- a folder, searched recursively (:func:`~featkit.data.find_images`), or one image file;
- a text file listing images, one path per line (relative paths are relative to the list's
  folder; blank lines and lines starting with ``#`` are ignored);
- WebDataset tar shards: one ``.tar`` or a brace pattern such as
  ``shards/train-{000000..000099}.tar`` (every member with an image suffix is an image; its
  offset is indexed once, so members are read directly, like files).

Images are decoded only when a step or a batch needs them, in DataLoader worker processes
when there are spare cores, so memory holds a few batches whatever the collection's size.
Training reads :class:`Load`\\ s: bounded pieces of the optimisation steps that
:func:`plan_epoch` draws; extraction reads :class:`ImageItems` in order.
"""

from __future__ import annotations

import hashlib
import math
import os
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info

from featkit.data import (
    ImageRef, decode_image, decode_windows, find_images, image_suffixes, probe_image, size_buckets, skip_reason,
)
from featkit.errors import FeatkitError, ImageError

__all__ = [
    "LOAD_PIXELS",
    "Collection",
    "Load",
    "LoadedImage",
    "ImageItems",
    "StepStream",
    "Window",
    "window_box",
    "default_workers",
    "image_batches",
    "loader",
    "open_collection",
    "plan_epoch",
    "scan_sizes",
]

#: Most pixels of training windows decoded and run through the network as one piece of a
#: step (about 24 MiB of input, a few hundred MiB of activations for the paper's CAE); a
#: full-batch step over many images accumulates its gradient over such pieces.
LOAD_PIXELS = 1 << 21


# -- collections -------------------------------------------------------------------------------
@dataclass
class Collection:
    """The images of one source, in a fixed order, without their pixels.

    Attributes:
        source: what the user gave (folder, file, list file, shard pattern).
        kind: ``"folder"``, ``"file"``, ``"list"`` or ``"shards"``.
        root: the folder class labels and relative names are read from.
        refs: the images, sorted by name (folders and lists) or in shard order.
        shards: the tar files of a ``"shards"`` collection, in order.
    """

    source: str
    kind: str
    root: Path
    refs: list[ImageRef]
    shards: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.refs)

    def digest(self) -> str:
        """A hash of the image names in order: equal digests, same images."""
        h = hashlib.sha256()
        for ref in self.refs:
            h.update(ref.name.encode())
            h.update(b"\n")
        return h.hexdigest()[:16]

    def subset(self, keep: Sequence[int]) -> Collection:
        """The same collection restricted to ``refs[i] for i in keep``."""
        return Collection(self.source, self.kind, self.root, [self.refs[i] for i in keep], self.shards)


def _is_shard_spec(text: str) -> bool:
    return not Path(text).is_dir() and (text.endswith(".tar") or ("{" in text and ".tar" in text))


def _tar_members(shard: str, index: int, suffixes: set[str]) -> list[ImageRef]:
    try:
        with tarfile.open(shard, "r:") as tar:  # uncompressed, seekable: headers only
            return [
                ImageRef(f"{shard}:{m.name}", shard, m.offset_data, m.size, index)
                for m in tar
                if m.isfile() and os.path.splitext(m.name)[1].lower() in suffixes
            ]
    except FileNotFoundError as exc:
        raise ImageError(f"no such shard: {shard}") from exc
    except (tarfile.TarError, OSError) as exc:
        raise ImageError(f"{shard}: not a readable uncompressed tar shard ({exc})") from exc


def open_collection(images: str | os.PathLike | Sequence[str | os.PathLike] | None) -> Collection:
    """The images of a folder, an image file, a list file, tar shards, or a list of paths.

    ``None`` means the ~20 sample photos (:func:`~featkit.data.sample_images`).

    Raises:
        ImageError: the source does not exist, a listed shard is missing or unreadable, or
            the source holds no image at all.
    """
    if images is None:
        from featkit.data import sample_images

        images = sample_images()
    if not isinstance(images, (str, os.PathLike)):
        paths = sorted(str(Path(p).resolve()) for p in images)
        if not paths:
            raise ImageError("no images given")
        root = Path(os.path.commonpath([str(Path(p).parent) for p in paths]))
        return Collection("<list>", "list", root, [ImageRef(p, p) for p in paths])
    text = os.fspath(images)
    if _is_shard_spec(text):
        from featkit.shards import expand_shards

        shards = expand_shards(text)
        suffixes = image_suffixes()
        refs = [ref for i, shard in enumerate(shards) for ref in _tar_members(shard, i, suffixes)]
        collection = Collection(text, "shards", Path(shards[0]).parent.resolve(), refs, shards)
    else:
        path = Path(text)
        if path.is_file() and path.suffix.lower() == ".txt":
            collection = Collection(text, "list", path.parent.resolve(), _listed(path))
        else:
            root = path.resolve()
            # Symlinked files are resolved so that names are real paths under a resolved root.
            refs = [ImageRef(str(p.resolve() if p.is_symlink() else p), str(p)) for p in find_images(root)]
            collection = Collection(text, "file" if root.is_file() else "folder",
                                    root if root.is_dir() else root.parent, refs)  # fmt: skip
    if not collection.refs:
        raise ImageError(f"no images found in {text}")
    return collection


def _listed(list_file: Path) -> list[ImageRef]:
    refs = []
    for line in list_file.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        path = Path(line) if Path(line).is_absolute() else list_file.parent / line
        refs.append(ImageRef(str(path.resolve()), str(path.resolve())))
    return sorted(refs, key=lambda r: r.name)


def scan_sizes(
    collection: Collection, *, max_side: int | None = None, verify: bool = False
) -> tuple[list[int], list[tuple[int, int]], list[tuple[str, str]]]:
    """Read every image's header (no pixels): which images open, and their sizes.

    ``verify`` also reads through each image's data (:func:`~featkit.data.probe_image`), so
    truncated files are found here rather than when a step first decodes them.

    Returns:
        ``(usable, sizes, skipped)``: indices into ``collection.refs`` of images whose
        header reads, their ``(height, width)`` after ``max_side``, and ``(name, reason)``
        for the others.
    """
    usable, sizes, skipped = [], [], []
    for i, ref in enumerate(collection.refs):
        try:
            w, h = probe_image(ref, max_side=max_side, verify=verify)
        except ImageError as exc:
            skipped.append((ref.name, skip_reason(exc, ref.name)))
            continue
        usable.append(i)
        sizes.append((h, w))
    return usable, sizes, skipped


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


# -- extraction: images in order -----------------------------------------------------------------
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


# -- training: the windows of each step ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Window:
    """One training window: image ``item`` (an index into the run's usable images), cut at a
    relative position ``v`` (rows) and ``u`` (columns) in [0, 1); :func:`window_box` turns
    them into pixels for the image's actual size."""

    item: int
    v: float
    u: float


def _mixed_seed(*parts: int) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:7], "little")


def plan_epoch(
    count: int,
    epoch: int,
    *,
    seed: int,
    batch_size: int,
    crops_per_image: int = 1,
    epoch_windows: int = 0,
) -> list[list[Window]]:
    """The optimisation steps of epoch ``epoch`` (0-based), a pure function of its arguments
    (so a resumed run replays the exact data of an uninterrupted one).

    ``epoch_windows = 0``: the epoch is one pass over the ``count`` images in a random order,
    each giving ``crops_per_image`` consecutive windows. ``epoch_windows > 0``: the epoch is
    that many windows, from images drawn without replacement from an endless sequence of
    random permutations, so an epoch costs the same whatever the collection's size and
    every image is seen once before any is seen twice. Steps are ``batch_size`` consecutive
    windows (0: the whole epoch is one full-batch step, as in the paper).

    Examples:
        >>> [[w.item for w in step] for step in plan_epoch(3, 0, seed=0, batch_size=0)]
        [[2, 0, 1]]
    """
    if count < 1 or batch_size < 0 or crops_per_image < 1 or epoch_windows < 0:
        raise ValueError(f"bad plan: count={count} batch_size={batch_size} crops_per_image={crops_per_image} "
                         f"epoch_windows={epoch_windows}")  # fmt: skip
    generator = torch.Generator().manual_seed(_mixed_seed(seed, epoch))
    if epoch_windows == 0:
        images = torch.randperm(count, generator=generator).tolist()
    else:
        per_epoch = math.ceil(epoch_windows / crops_per_image)
        first = epoch * per_epoch
        images, blocks = [], {}
        for position in range(first, first + per_epoch):
            block = position // count
            if block not in blocks:
                blocks = {block: torch.randperm(count, generator=torch.Generator().manual_seed(_mixed_seed(seed, -1, block)))}
            images.append(int(blocks[block][position % count]))
    offsets = torch.rand(len(images), crops_per_image, 2, generator=generator).tolist()
    windows = [Window(item, v, u) for item, pairs in zip(images, offsets) for v, u in pairs]
    if epoch_windows:
        windows = windows[:epoch_windows]
    step = batch_size or len(windows)
    return [windows[i : i + step] for i in range(0, len(windows), step)]


def _offset(fraction: float, side: int, window: int) -> int:
    """Start of a ``window``-long run in ``side``: uniform over ``-(window - 1) .. side - 1``,
    then clamped inside. A window so touches each border of the image with probability
    ``window / (side + window - 1)`` (about 1/3 for 128 px crops of a 300 px photo) instead
    of ``1 / (side - window + 1)`` for plain uniform starts (1/173), so a network trained on
    crops also learns to reconstruct next to the image's edges."""
    return min(max(math.floor(fraction * (side + window - 1)) - (window - 1), 0), side - window)


def window_box(window: Window, size: tuple[int, int], crop: int) -> tuple[int, int, int, int]:
    """``(top, left, height, width)`` of ``window`` in an image of ``size = (H, W)``."""
    height, width = size
    h, w = (min(crop, height), min(crop, width)) if crop else (height, width)
    return _offset(window.v, height, h), _offset(window.u, width, w), h, w


@dataclass
class Load:
    """A piece of one optimisation step, decoded: what one process runs through the network
    before the step's gradient is complete.

    Attributes:
        epoch: 0-based epoch of the step.
        step: 0-based step within the epoch.
        windows: windows the step has in all (every process together).
        last: whether this is this process's last piece of the step.
        batches: :math:`(B_k, 3, h_k, w_k)` tensors in [-1, 1], one per window size.
        failed: ``(name, reason)`` of images that could not be decoded (their windows are
            missing from ``batches``).
    """

    epoch: int
    step: int
    windows: int
    last: bool
    batches: list[torch.Tensor] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def _split(windows: list[Window], sizes: Sequence[tuple[int, int]], crop: int, budget: int) -> list[list[Window]]:
    """Consecutive runs of ``windows`` of at most ``budget`` pixels each (at least one window)."""
    pieces, current, pixels = [], [], 0
    for w in windows:
        _, _, h, wd = window_box(w, sizes[w.item], crop)
        if current and pixels + h * wd > budget:
            pieces.append(current)
            current, pixels = [], 0
        current.append(w)
        pixels += h * wd
    return pieces + [current] if current else pieces or [[]]


class StepStream(IterableDataset):
    """The loads of every remaining step of a run, in order, for one process of ``world``.

    Worker ``k`` of ``n`` decodes loads ``k, k + n, ...``, so the DataLoader hands them over
    in plan order. Under ``torchrun`` a window belongs to the process that owns its image's
    tar shard (shard ``i`` to rank ``i mod world``), or for files to rank ``j mod world`` for
    the ``j``-th window of the step; every process yields at least one (maybe empty) load per
    step so all of them take part in every gradient reduction.

    Args:
        collection: the usable images.
        sizes: their ``(H, W)`` after ``max_side`` (from :func:`scan_sizes`).
        plan: settings of :func:`plan_epoch` (``seed``, ``batch_size``, ``crops_per_image``,
            ``epoch_windows``).
        crop: window side; 0 for whole images.
        max_side: as in :func:`scan_sizes`.
        start: ``(epoch, step)`` to begin at; ``stop``: the epoch to end before.
        rank, world: this process and how many there are.
        load_pixels: pixel budget of one load (default :data:`LOAD_PIXELS`).
    """

    def __init__(self, collection: Collection, sizes: Sequence[tuple[int, int]], *, plan: dict, crop: int,
                 max_side: int | None, start: tuple[int, int], stop: int, rank: int = 0, world: int = 1,
                 load_pixels: int | None = None) -> None:  # fmt: skip
        super().__init__()
        self.collection, self.sizes, self.plan, self.crop, self.max_side = collection, list(sizes), plan, crop, max_side
        self.start, self.stop, self.rank, self.world = start, stop, rank, world
        self.load_pixels = LOAD_PIXELS if load_pixels is None else load_pixels

    def mine(self, step: list[Window]) -> list[Window]:
        """This process's windows of one step."""
        if self.world == 1:
            return step
        if self.collection.kind == "shards":
            return [w for w in step if self.collection.refs[w.item].shard % self.world == self.rank]
        return step[self.rank :: self.world]

    def pieces(self) -> Iterator[tuple[int, int, int, bool, list[Window]]]:
        """``(epoch, step, windows in the step, last piece?, windows of this piece)`` in order."""
        epoch, first_step = self.start
        while epoch < self.stop:
            steps = plan_epoch(len(self.collection), epoch, **self.plan)
            for s in range(first_step, len(steps)):
                parts = _split(self.mine(steps[s]), self.sizes, self.crop, self.load_pixels)
                for k, part in enumerate(parts):
                    yield epoch, s, len(steps[s]), k == len(parts) - 1, part
            epoch, first_step = epoch + 1, 0

    def __iter__(self) -> Iterator[Load]:
        info = get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        for n, (epoch, step, total, last, part) in enumerate(self.pieces()):
            if n % workers == worker:
                yield self.decode(Load(epoch, step, total, last), part)

    def decode(self, load: Load, windows: list[Window]) -> Load:
        """Fill ``load`` with the pixels of ``windows`` (each image decoded once)."""
        by_image: dict[int, list[Window]] = {}
        for w in windows:
            by_image.setdefault(w.item, []).append(w)
        cut = []
        for item, mine in by_image.items():
            ref = self.collection.refs[item]
            try:
                cut += decode_windows(ref, lambda size, mine=mine: [window_box(w, size, self.crop) for w in mine],
                                      max_side=self.max_side)  # fmt: skip
            except ImageError as exc:
                load.failed.append((ref.name, skip_reason(exc, ref.name)))
        load.batches = [torch.stack([cut[i] for i in group]) for group in size_buckets([c.shape[-2:] for c in cut], None)]
        return load

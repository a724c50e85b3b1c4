"""Training windows: which crops of which images each optimisation step takes
(:func:`plan_epoch`, a pure function of the seed and the epoch) and the stream of bounded
:class:`Load`\\ s that decodes them (:class:`StepStream`)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch.utils.data import IterableDataset, get_worker_info

from featkit.data.collections import Collection
from featkit.data.images import decode_windows, size_buckets, skip_reason
from featkit.errors import ImageError

__all__ = ["LOAD_PIXELS", "Load", "StepStream", "Window", "plan_epoch", "window_box"]


#: Most pixels of training windows decoded and run through the network as one piece of a
#: step (about 24 MiB of input, a few hundred MiB of activations for the paper's CAE); a
#: full-batch step over many images accumulates its gradient over such pieces.
LOAD_PIXELS = 1 << 21


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

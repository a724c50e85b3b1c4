"""Collections: the images training and extraction read, from 20 photos to millions.

A collection is a list of :class:`~featkit.data.ImageRef` (where each image's bytes are),
never of pixels. It comes from any of:

- a folder, searched recursively (:func:`~featkit.data.find_images`), or one image file;
- a text file listing images, one path per line (relative paths are relative to the list's
  folder; blank lines and lines starting with ``#`` are ignored);
- WebDataset tar shards: one ``.tar`` or a brace pattern such as
  ``shards/train-{000000..000099}.tar`` (every member with an image suffix is an image; its
  offset is indexed once, so members are read directly, like files).

Images are decoded only when a step or a batch needs them, in DataLoader worker processes
when there are spare cores, so memory holds a few batches whatever the collection's size:
training reads :class:`~featkit.data.windows.Load`\\ s, bounded pieces of the optimisation
steps that :func:`~featkit.data.windows.plan_epoch` draws; extraction reads
:class:`~featkit.data.loading.ImageItems` in order.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from featkit.data.images import ImageRef, find_images, image_suffixes, probe_image, skip_reason
from featkit.data.samples import sample_images
from featkit.data.shards import expand_shards
from featkit.errors import ImageError

__all__ = ["Collection", "open_collection", "ref_for_name", "scan_sizes"]


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
        images = sample_images()
    if not isinstance(images, (str, os.PathLike)):
        paths = sorted(str(Path(p).resolve()) for p in images)
        if not paths:
            raise ImageError("no images given")
        root = Path(os.path.commonpath([str(Path(p).parent) for p in paths]))
        return Collection("<list>", "list", root, [ImageRef(p, p) for p in paths])
    text = os.fspath(images)
    if _is_shard_spec(text):
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


def ref_for_name(name: str) -> ImageRef:
    """The image a manifest names: a file's path, or ``shard.tar:member`` as
    :func:`open_collection` names a tar member (found by the shard's headers, read once per
    version of the shard).

    Raises:
        ImageError: no such file, shard or member.
    """
    shard, tar_suffix, member = name.rpartition(".tar:")
    if tar_suffix and not Path(name).is_file():
        shard += ".tar"
        try:
            stat = os.stat(shard)
        except OSError as exc:
            raise ImageError(f"no such shard: {shard}") from exc
        found = _shard_offsets(shard, stat.st_mtime_ns, stat.st_size).get(member)
        if found is None:
            raise ImageError(f"{shard} has no member {member}")
        return ImageRef(name, shard, *found)
    if not Path(name).is_file():
        raise ImageError(f"no such image: {name}")
    return ImageRef(name, name)


@functools.lru_cache(maxsize=16)
def _shard_offsets(shard: str, mtime_ns: int, size: int) -> dict[str, tuple[int, int]]:
    """``member -> (offset, size)`` of a shard's files; cached per ``(shard, mtime, size)``
    so that a rewritten shard is read again."""
    try:
        with tarfile.open(shard, "r:") as tar:
            return {m.name: (m.offset_data, m.size) for m in tar if m.isfile()}
    except (tarfile.TarError, OSError) as exc:
        raise ImageError(f"{shard}: not a readable uncompressed tar shard ({exc})") from exc


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

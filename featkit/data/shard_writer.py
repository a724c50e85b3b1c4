"""WebDataset tar shards: from a folder of images to files a cluster can stream, and back.

:func:`write_shards` copies the images of a folder (or a list file, or a list of paths) into
``OUT_DIR/shard-000000.tar``, ``shard-000001.tar``, ... Each image becomes one WebDataset
sample of two members:

- ``<key>.<ext>``: the file's bytes exactly as they are on disk (never re-encoded); ``ext`` is
  its suffix in lower case (``IMG_7.JPG`` -> ``.jpg``).
- ``<key>.json``: ``{"path": "<relative path>"}``, where the image came from.

The key is the image's path relative to the folder (a list file's folder, or for a listed
image outside it, its absolute path without the leading ``/``), without its suffix, with every
``.`` replaced by ``_``: WebDataset splits a member's name into key and extension at the first
dot of its basename, so ``cats/img.001.jpg`` becomes ``cats/img_001`` + ``.jpg``. A key already
taken (``a.b.jpg`` and ``a_b.jpg``; ``x.jpg`` and ``x.png``) gets ``_1``, ``_2``, ... appended.

Images are checked from their header alone (:func:`~featkit.data.probe_image`, no pixels are
decoded), so the copy runs at disk speed: a file that is not an image, has no image suffix or
is a decompression bomb is skipped and reported; a truncated image passes here and is skipped,
with its reason, when training or extraction decodes it. ``OUT_DIR/shards.json`` records the
shards, their image counts and the skipped files.

:func:`~featkit.data.shards.expand_shards` and :func:`~featkit.data.shards.iter_shard_images`
read shards back, streaming.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from featkit.data.shards import MANIFEST
from featkit.errors import FeatkitError, ImageError, OutputExistsError
from featkit.io import atomic_dir, ensure_new

__all__ = ["DEFAULT_MAX_COUNT", "DEFAULT_MAX_SIZE", "write_shards"]


#: Images per shard unless told otherwise.
DEFAULT_MAX_COUNT = 1000
#: Bytes per shard unless told otherwise (tar headers and padding included).
DEFAULT_MAX_SIZE = 10**9
_NAME = "shard-{:06d}.tar"
_TAR_FORMAT = tarfile.PAX_FORMAT  # long and non-ASCII names; plain ustar headers otherwise


def write_shards(
    images: str | os.PathLike | Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    max_count: int = DEFAULT_MAX_COUNT,
    max_size: int = DEFAULT_MAX_SIZE,
    overwrite: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Write the images of ``images`` into WebDataset tar shards in ``out_dir``.

    The shards appear all at once: they are written into a hidden folder beside ``out_dir``
    that is renamed into place at the end (and removed on any error or Ctrl-C).

    Args:
        images: a folder (searched recursively), an image file, a ``.txt`` file listing image
            paths one per line, or a list of paths: what training and extraction accept.
        out_dir: the folder to create (or an empty one).
        max_count: most images per shard.
        max_size: most bytes per shard, tar headers and padding included; an image larger
            than that on its own gets a shard of its own.
        overwrite: replace an existing ``out_dir`` that :func:`write_shards` wrote before.
        on_progress: called as ``on_progress(done, total)`` after each image.

    Returns:
        ``{"shards": [paths], "pattern": brace pattern reading them all, "images": count,
        "bytes": total size of the shards, "skipped": [{"path", "reason"}]}``.

    Raises:
        OutputExistsError: ``out_dir`` holds files and ``overwrite`` is not set, or it holds
            files but not :data:`MANIFEST` (featkit will not delete a folder it did not write).
        ImageError: ``images`` does not exist or holds no image; no image is readable.
        FeatkitError: ``max_count`` or ``max_size`` below 1, or ``images`` already shards.

    Examples:
        >>> summary = write_shards("photos/", "shards/")  # doctest: +SKIP
        >>> summary["pattern"]  # doctest: +SKIP
        'shards/shard-{000000..000012}.tar'
    """
    from featkit.data.collections import open_collection
    from featkit.data.images import image_suffixes, probe_image, skip_reason

    if max_count < 1 or max_size < 1:
        raise FeatkitError(f"max_count and max_size must be >= 1, got {max_count} and {max_size}")
    collection = open_collection(images)
    if collection.kind == "shards":
        raise FeatkitError(f"{collection.source} is already WebDataset shards")
    out_dir = Path(out_dir)
    _check_replaceable(out_dir, overwrite)
    suffixes = image_suffixes()
    keys: set[str] = set()
    skipped: list[dict[str, str]] = []
    with atomic_dir(out_dir) as tmp:
        writer = _ShardWriter(tmp, max_count, max_size)
        for done, ref in enumerate(collection.refs, start=1):
            relative = _relative_path(ref.name, collection.root)
            suffix = PurePosixPath(relative).suffix.lower()
            try:
                if suffix not in suffixes:
                    raise ImageError(f"{ref.name}: no image suffix (.jpg, .png, ...) to name its member by")
                probe_image(ref)
                with ref.open() as fh:
                    data = fh.read()
                mtime = os.stat(ref.path).st_mtime
            except (ImageError, OSError) as exc:
                skipped.append({"path": ref.name, "reason": skip_reason(exc, ref.name)})
            else:
                key = _unique_key(relative, keys)
                writer.add(key, [(suffix, data), (".json", json.dumps({"path": relative}).encode())], mtime)
            if on_progress is not None:
                on_progress(done, len(collection.refs))
        shards = writer.close()
        if not shards:
            first = f" (first: {skipped[0]['path']}: {skipped[0]['reason']})" if skipped else ""
            raise ImageError(f"no readable image in {collection.source}: {len(skipped)} skipped{first}")
        manifest = {
            "source": collection.source,
            "pattern": _pattern([name for name, _, _ in shards]),
            "shards": [{"name": name, "images": count, "bytes": size} for name, count, size in shards],
            "images": sum(count for _, count, _ in shards),
            "bytes": sum(size for _, _, size in shards),
            "skipped": skipped,
        }
        # plain write: the whole folder is renamed into place
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return {
        "shards": [str(out_dir / name) for name, _, _ in shards],
        "pattern": str(out_dir / manifest["pattern"]),
        "images": manifest["images"],
        "bytes": manifest["bytes"],
        "skipped": skipped,
    }


def _check_replaceable(out_dir: Path, overwrite: bool) -> None:
    """Refuse a non-empty ``out_dir`` unless ``overwrite``, and even then unless it holds
    :data:`MANIFEST` (so ``--overwrite`` never deletes a folder of photos)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputExistsError(f"{out_dir} exists and is not a folder; choose another output")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        ensure_new(out_dir, overwrite=overwrite)
        if not (out_dir / MANIFEST).is_file():
            raise OutputExistsError(
                f"{out_dir} was not written by `featkit shards` (no {MANIFEST}); refusing to replace it"
            )


def _relative_path(name: str, root: Path) -> str:
    """``name`` relative to ``root`` in POSIX form; a path outside it loses only its leading ``/``."""
    path = Path(name)
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix().lstrip("/")


def _unique_key(relative: str, taken: set[str]) -> str:
    """The WebDataset key of ``relative`` (see the module docstring), not yet in ``taken``."""
    path = PurePosixPath(relative)
    base = str(path.with_suffix("") if path.suffix else path).replace(".", "_")
    key, n = base, 0
    while key in taken:
        n += 1
        key = f"{base}_{n}"
    taken.add(key)
    return key


def _pattern(names: Sequence[str]) -> str:
    """``shard-{000000..000012}.tar`` for shards 0 to 12 (the one name when there is one)."""
    if len(names) == 1:
        return names[0]
    return _NAME.replace("{:06d}", "{" + f"{0:06d}..{len(names) - 1:06d}" + "}")


class _ShardWriter:
    """Writes samples into ``shard-NNNNNN.tar`` files in ``folder``, starting a new shard
    before one would exceed ``max_count`` samples or ``max_size`` bytes."""

    def __init__(self, folder: Path, max_count: int, max_size: int) -> None:
        self.folder, self.max_count, self.max_size = folder, max_count, max_size
        self.tar: tarfile.TarFile | None = None
        self.count = 0
        self.done: list[tuple[str, int, int]] = []  # (name, samples, bytes) of closed shards

    def add(self, key: str, members: Sequence[tuple[str, bytes]], mtime: float) -> None:
        """Write one sample: ``key + ext`` for each ``(ext, data)`` of ``members``."""
        infos = []
        for ext, data in members:
            info = tarfile.TarInfo(key + ext)
            info.size, info.mtime, info.mode = len(data), int(mtime), 0o644
            infos.append(info)
        cost = sum(len(i.tobuf(_TAR_FORMAT, "utf-8", "surrogateescape")) + _padded(i.size) for i in infos)
        full = self.tar is not None and (
            self.count >= self.max_count or _closed_size(self.tar.offset + cost) > self.max_size
        )
        if full:
            self._finish()
        if self.tar is None:
            self.tar = tarfile.open(self.folder / _NAME.format(len(self.done)), "w", format=_TAR_FORMAT)
            self.count = 0
        for info, (_, data) in zip(infos, members):
            self.tar.addfile(info, io.BytesIO(data))
        self.count += 1

    def close(self) -> list[tuple[str, int, int]]:
        """Finish the last shard; returns ``(name, images, bytes)`` of every shard."""
        if self.tar is not None:
            self._finish()
        return self.done

    def _finish(self) -> None:
        assert self.tar is not None
        path = Path(self.tar.name)
        self.tar.close()
        with open(path, "rb") as fh:
            os.fsync(fh.fileno())
        self.done.append((path.name, self.count, path.stat().st_size))
        self.tar = None


def _padded(size: int) -> int:
    """Bytes a member's data takes in a tar: whole 512-byte blocks."""
    return -(-size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE


def _closed_size(offset: int) -> int:
    """The size of a tar closed at ``offset``: two zero blocks, then padding to a whole record."""
    return -(-(offset + 2 * tarfile.BLOCKSIZE) // tarfile.RECORDSIZE) * tarfile.RECORDSIZE

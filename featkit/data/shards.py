"""Reading WebDataset tar shards back, streaming: :func:`expand_shards` turns a brace pattern into
files and :func:`iter_shard_images` yields each image member with its recorded path. Writing
them is :mod:`featkit.data.shard_writer`."""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from featkit.errors import ShardError

__all__ = ["MANIFEST", "ShardImage", "expand_shards", "iter_shard_images"]


#: The summary :func:`write_shards` leaves in its output folder; its presence is what lets
#: ``overwrite`` replace the folder.
MANIFEST = "shards.json"


def expand_shards(pattern: str | os.PathLike) -> list[str]:
    """The shard files of a brace pattern, in order, each checked to exist.

    Args:
        pattern: one ``.tar`` path or a brace pattern such as
            ``shards/shard-{000000..000012}.tar`` (bash brace expansion: ranges and lists).

    Raises:
        ShardError: unbalanced braces, or a listed shard that does not exist (naming the first
            missing ones and how many).

    Examples:
        >>> expand_shards("shards/shard-{000000..000002}.tar")  # doctest: +SKIP
        ['shards/shard-000000.tar', 'shards/shard-000001.tar', 'shards/shard-000002.tar']
    """
    from braceexpand import UnbalancedBracesError, braceexpand

    pattern = os.fspath(pattern)
    try:
        shards = list(braceexpand(pattern))
    except UnbalancedBracesError as exc:
        raise ShardError(f"{pattern}: not a valid shard pattern ({exc})") from exc
    missing = [s for s in shards if not os.path.isfile(s)]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise ShardError(
            f"{len(missing)} of the {len(shards)} shards of {pattern} do not exist: {', '.join(missing[:3])}{more}"
        )
    return shards


class ShardImage(NamedTuple):
    """One image read back from a shard.

    Attributes:
        key: the sample's WebDataset key (member name up to the first dot of its basename).
        path: where the image came from (``path`` of the sample's ``.json`` member, as
            :func:`write_shards` records it), else the image member's name.
        data: the encoded image, byte for byte as it was written.
    """

    key: str
    path: str
    data: bytes


def iter_shard_images(shards: str | os.PathLike | Sequence[str | os.PathLike]) -> Iterator[ShardImage]:
    """Stream the images of shards in order, one sample in memory at a time.

    Every member whose suffix Pillow registers as an image's is an image (the same rule as
    training and extraction); members of a sample are grouped by WebDataset's rule (the key
    is the name up to the first dot of the basename, and a sample's members are adjacent).

    Args:
        shards: a brace pattern (see :func:`expand_shards`) or a list of shard files.

    Raises:
        ShardError: a missing shard, or one that is not an uncompressed tar or is corrupt or
            truncated, naming it.
    """
    from featkit.data.images import image_suffixes

    if isinstance(shards, (str, os.PathLike)):
        paths = expand_shards(shards)
    else:
        paths = [os.fspath(s) for s in shards]
    suffixes = image_suffixes()
    for shard in paths:
        try:
            yield from _shard_images(shard, suffixes)
        except FileNotFoundError as exc:
            raise ShardError(f"no such shard: {shard}") from exc
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise ShardError(f"{shard}: not a readable uncompressed tar shard ({exc})") from exc


def _shard_images(shard: str, suffixes: set[str]) -> Iterator[ShardImage]:
    with open(shard, "rb") as fh, tarfile.open(fileobj=fh, mode="r:") as tar:
        key, images, path = None, [], None
        for member in tar:
            if not member.isfile():
                continue
            folder, _, base = member.name.rpartition("/")
            stem, dot, ext = base.partition(".")
            if not dot:
                continue  # no extension: not part of any sample
            member_key = f"{folder}/{stem}" if folder else stem
            if member_key != key:
                yield from (ShardImage(key, path or name, data) for name, data in images)
                key, images, path = member_key, [], None
            if os.path.splitext(base)[1].lower() in suffixes:
                images.append((member.name, _read(tar, member)))
            elif ext == "json":
                path = _recorded_path(_read(tar, member))
        yield from (ShardImage(key, path or name, data) for name, data in images)
        _check_end(fh, tar.offset, shard)


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    data = tar.extractfile(member).read()
    if len(data) != member.size:
        raise tarfile.ReadError(f"member {member.name} is truncated")
    return data


def _recorded_path(data: bytes) -> str | None:
    """The ``path`` a ``.json`` member records, if it is JSON with a string ``path``."""
    try:
        record = json.loads(data)
    except ValueError:
        return None
    path = record.get("path") if isinstance(record, dict) else None
    return path if isinstance(path, str) else None


def _check_end(fh: io.BufferedReader, offset: int, shard: str) -> None:
    """A tar ends with zero blocks. Python's tarfile stops quietly at a damaged header or at
    the end of the data, so anything else after the last member means a corrupt or
    truncated shard."""
    fh.seek(offset)
    tail = 0
    while chunk := fh.read(1 << 20):
        zeros = len(chunk) - len(chunk.lstrip(b"\0"))
        if zeros != len(chunk):
            raise ShardError(f"{shard}: corrupt tar shard (unreadable data at byte {offset + tail + zeros})")
        tail += len(chunk)
    if tail < tarfile.BLOCKSIZE:
        raise ShardError(f"{shard}: truncated tar shard (it ends without the end-of-archive blocks)")

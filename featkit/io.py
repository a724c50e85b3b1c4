"""Writing outputs so that nothing is half-written and nothing that worked is overwritten."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from featkit.errors import OutputExistsError

__all__ = ["atomic_dir", "atomic_path", "ensure_new", "read_json", "write_json"]


def ensure_new(path: str | os.PathLike, *, overwrite: bool = False, hint: str = "pass --overwrite") -> Path:
    """Refuse to replace an existing output unless ``overwrite`` is set.

    Raises:
        OutputExistsError: naming the path and how to proceed.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} already exists; {hint} or choose another output")
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is fsynced and renamed onto
    ``path`` in one step, on failure it is removed. Readers see the old file or the new one,
    never a partial file.

    Examples:
        >>> import tempfile, pathlib
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "x.txt"
        >>> with atomic_path(out) as tmp:
        ...     _ = tmp.write_text("done")
        >>> out.read_text()
        'done'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temp_file(path)
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _new_temp_file(path: Path) -> Path:
    """An empty hidden file beside ``path`` with the permissions a new file gets (``0o666``
    less the umask; :func:`tempfile.mkstemp` would make it private to the user)."""
    while True:
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a new hidden folder beside ``path``; on success it takes ``path``'s place, on
    failure (or Ctrl-C) it is removed. Readers see the old folder or the whole new one, never
    a partial one.

    An existing ``path`` (the caller decides whether it may go) is renamed aside, the new folder
    renamed in, and the old one removed; between the two renames ``path`` is briefly absent.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    tmp.mkdir()  # unlike tempfile.mkdtemp, honours the umask: the folder keeps ordinary permissions
    try:
        yield tmp
        if path.exists():
            old = tmp.with_suffix(".old")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Parse a JSON file (errors propagate; callers wrap them with context)."""
    return json.loads(Path(path).read_text())

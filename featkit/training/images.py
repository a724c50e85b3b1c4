"""The images a run trains on: the usable part of its collection, their sizes, the list beside
``config.json``, and the check that a resumed run still has the same images."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from featkit.data.collections import Collection, open_collection, scan_sizes
from featkit.errors import CheckpointError, ImageError
from featkit.io import atomic_path, read_json
from featkit.runs.models import CONFIG_FILE
from featkit.training.config import TrainConfig

__all__ = ["FILES_LIST"]


#: The file beside ``config.json`` listing the run's images, one name per line.
FILES_LIST = "files.txt"


@dataclass
class TrainingImages:
    """The images a run trains on: the usable part of its collection and their sizes."""

    collection: Collection
    sizes: list[tuple[int, int]]
    summary: dict[str, Any]


def open_training_images(config: TrainConfig) -> TrainingImages:
    """List the run's images and read their headers (no pixels); ``--strict`` fails here."""
    collection = open_collection(config.data)
    usable, sizes, skipped = scan_sizes(collection, max_side=config.max_side, verify=config.strict)
    if skipped and config.strict:
        listed = "; ".join(f"{name}: {why}" for name, why in skipped)
        raise ImageError(f"--strict: {len(skipped)} file(s) in {collection.source} cannot be used: {listed}")
    if not usable:
        raise ImageError(f"no usable images in {collection.source} ({len(skipped)} skipped)")
    collection = collection.subset(usable)
    heights, widths = [h for h, _ in sizes], [w for _, w in sizes]
    summary = {
        "folder": collection.source,
        "kind": collection.kind,
        "sample_photos": config.data is None,
        "images": len(collection),
        "pixels": int(sum(h * w for h, w in sizes)),
        "height": [min(heights), max(heights)],
        "width": [min(widths), max(widths)],
        "digest": collection.digest(),
        "files": FILES_LIST,
        "max_side": config.max_side,
        "skipped": [{"path": name, "reason": why} for name, why in skipped],
    }
    return TrainingImages(collection, sizes, summary)


def write_files_list(run_dir: Path, collection: Collection) -> None:
    with atomic_path(run_dir / FILES_LIST) as tmp, open(tmp, "w") as fh:
        fh.writelines(f"{ref.name}\n" for ref in collection.refs)


def check_same_images(run_dir: Path, data: TrainingImages) -> None:
    before = read_json(run_dir / CONFIG_FILE)["data"]
    if before.get("digest") == data.summary["digest"]:
        return
    listed = run_dir / FILES_LIST
    old = set(listed.read_text().splitlines()) if listed.is_file() else set(before.get("files", []))
    new = {ref.name for ref in data.collection.refs}
    added, removed = sorted(new - old), sorted(old - new)
    if not added and not removed:  # a run written before digests: the same images
        return
    raise CheckpointError(
        f"cannot resume {run_dir} exactly: its images changed since it started "
        f"({len(added)} added, {len(removed)} removed, e.g. {(added + removed)[:3]})"
    )

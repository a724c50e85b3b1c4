"""The partial output of a running extraction: rows appended to a hidden folder beside the
output with a log of finished files, so an interrupted run resumes where it stopped and the
final ``.npy`` appears only once, atomically."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from featkit.errors import FeatkitError
from featkit.features.files import manifest_path, npy_header
from featkit.io import atomic_path, read_json, write_json

__all__ = ["CHECKPOINT_EVERY_S"]


#: Seconds between checkpoints of a running extraction (what ``resume`` can fall back to).
CHECKPOINT_EVERY_S = 2.0
_PARTIAL_ROWS, _PARTIAL_LOG, _PARTIAL_CONFIG = "rows.f32", "done.jsonl", "config.json"


class PartialRun:
    """The hidden folder holding an unfinished extraction: appended rows, a log of finished
    files, and the settings that must match for ``resume``."""

    def __init__(self, out: Path, config: dict[str, Any]) -> None:
        self.dir = out.with_name(f".{out.name}.partial")
        self.config = config
        self.dim = config["dim"]
        self.records: list[dict[str, Any]] = []
        self._pending: list[dict[str, Any]] = []
        self._last_checkpoint = time.monotonic()

    def exists(self) -> bool:
        return self.dir.is_dir()

    def start(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        write_json(self.dir / _PARTIAL_CONFIG, self.config)
        (self.dir / _PARTIAL_ROWS).touch()
        (self.dir / _PARTIAL_LOG).touch()

    def reopen(self) -> None:
        """Load what an interrupted run finished and cut off anything written after it."""
        saved = read_json(self.dir / _PARTIAL_CONFIG)
        changed = sorted(k for k in set(saved) | set(self.config) if saved.get(k) != self.config.get(k))
        if changed:
            raise FeatkitError(
                f"cannot resume {self.dir}: it was started with different {', '.join(changed)}; "
                "pass --overwrite to start again"
            )
        for line in (self.dir / _PARTIAL_LOG).read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                break  # a line cut short by the interruption: redo that file
            if record.get("index") != len(self.records):
                break
            self.records.append(record)
        rows = sum(r.get("rows", 0) for r in self.records)
        with open(self.dir / _PARTIAL_ROWS, "r+b") as fh:
            fh.truncate(rows * self.dim * 4)
        with open(self.dir / _PARTIAL_LOG, "w") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in self.records)

    def open(self) -> None:
        self._rows = open(self.dir / _PARTIAL_ROWS, "ab")
        self._log = open(self.dir / _PARTIAL_LOG, "a")

    def add(self, record: dict[str, Any], rows: np.ndarray | None) -> None:
        if rows is not None:
            self._rows.write(np.ascontiguousarray(rows, dtype="<f4").tobytes())
        self._pending.append(record)
        if time.monotonic() - self._last_checkpoint > CHECKPOINT_EVERY_S:
            self.checkpoint()

    def checkpoint(self) -> None:
        """Make the rows durable, then log the files they belong to."""
        self._rows.flush()
        os.fsync(self._rows.fileno())
        self._log.writelines(json.dumps(r) + "\n" for r in self._pending)
        self._log.flush()
        os.fsync(self._log.fileno())
        self.records += self._pending
        self._pending = []
        self._last_checkpoint = time.monotonic()

    def close(self) -> None:
        self.checkpoint()
        self._rows.close()
        self._log.close()

    def finish(self, out: Path, manifest: dict[str, Any]) -> None:
        """Write the final ``.npy`` (header + the appended rows) and the manifest, atomically."""
        with atomic_path(out) as tmp:
            with open(tmp, "wb") as dst, open(self.dir / _PARTIAL_ROWS, "rb") as src:
                dst.write(npy_header(manifest["rows"], self.dim))
                shutil.copyfileobj(src, dst, length=1 << 22)
        write_json(manifest_path(out), manifest)
        shutil.rmtree(self.dir, ignore_errors=True)

"""Joining the outputs of sharded extraction jobs (``--shard i/n``) into the file one run gives."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from featkit.errors import FeatkitError
from featkit.features.files import iter_feature_chunks, load_features, manifest_path, npy_header
from featkit.io import atomic_path, ensure_new, write_json

__all__ = ["merge_features"]


def merge_features(
    parts: Sequence[str | os.PathLike], out: str | os.PathLike, *, overwrite: bool = False
) -> dict[str, Any]:
    """Join the shards of one collection (``extract(..., shard="i/n")`` for every ``i``) into
    the features one unsharded run would write, streaming (memory stays at one block).

    Raises:
        FeatkitError: a part that is not a shard, shards of different models, settings or
            collections, or a missing or repeated shard.
    """
    out = ensure_new(out, overwrite=overwrite)
    if out.suffix != ".npy":
        raise FeatkitError(f"output must be a .npy file, got {out}")
    manifests = []
    for part in parts:
        _, manifest = load_features(part)
        if manifest is None or not manifest.get("shard"):
            raise FeatkitError(f"{part} is not a shard (no manifest with 'shard' beside it; extract with --shard i/n)")
        manifests.append((manifest["shard"][0], Path(part), manifest))
    manifests.sort(key=lambda m: m[0])
    first = manifests[0][2]
    n = first["shard"][1]
    same = ("fingerprint", "layer", "pool", "grid", "dim", "max_side", "collection")
    for _, part, manifest in manifests[1:]:
        differ = [k for k in same if manifest.get(k) != first.get(k)]
        if differ:
            raise FeatkitError(f"{part} differs from {manifests[0][1]} in {', '.join(differ)}; shards must come from one run")
    got = [m[0] for m in manifests]
    if got != list(range(1, n + 1)):
        raise FeatkitError(f"need shards 1..{n} exactly once, got {', '.join(f'{i}/{n}' for i in got)}")

    items, skipped, rows = [], [], 0
    for _, _, manifest in manifests:
        for item in manifest["items"]:
            items.append({**item, "offset": item["offset"] + rows} if manifest["dense"] else item)
        skipped += manifest["skipped"]
        rows += manifest["rows"]
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as dst:
            dst.write(npy_header(rows, first["dim"]))
            for _, part, _ in manifests:
                for block in iter_feature_chunks(part):
                    dst.write(block.tobytes())
    merged = {**first, "shard": None, "rows": rows, "items": items, "skipped": skipped}
    write_json(manifest_path(out), merged)
    return merged

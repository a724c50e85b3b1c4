"""Old module paths of featkit 0.1 (one flat folder), kept for one release.

``import featkit.extraction`` (or any other path in :data:`MOVED`) still works: it gives a
module whose attributes are looked up in the modules the names moved to, and warns once with a
:class:`DeprecationWarning` naming them. The old paths go away in featkit 0.3; the README's
layout section lists where everything went. Only reading names through the old path works:
patching an attribute of the old module changes nothing the new modules see.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
import warnings

__all__ = ["MOVED", "install"]

#: Old module -> the modules its names live in now (looked up in this order).
MOVED: dict[str, tuple[str, ...]] = {
    "featkit.allocator": ("featkit.runtime.allocator",),
    "featkit.checkpoint": ("featkit.runs.tensors", "featkit.runs.checkpoint", "featkit.runs.models"),
    "featkit.clustering": ("featkit.tasks.clustering",),
    "featkit.contrast": ("featkit.training.contrast",),
    "featkit.descriptors": ("featkit.features.descriptors", "featkit.runs.whitening"),
    "featkit.devices": ("featkit.runtime.devices",),
    "featkit.evaluate": ("featkit.tasks.evaluation",),
    "featkit.extraction": (
        "featkit.features.extraction", "featkit.features.encoding", "featkit.features.pooling",
        "featkit.features.files", "featkit.features.merging", "featkit.runs.models",
    ),  # fmt: skip
    "featkit.match_plot": ("featkit.report.match_drawing",),
    "featkit.matching": ("featkit.tasks.matching", "featkit.tasks.homography"),
    "featkit.pipeline": ("featkit.data.collections", "featkit.data.loading", "featkit.data.windows"),
    "featkit.plots": ("featkit.report.figures",),
    "featkit.reproduce": ("featkit.training.reproduce",),
    "featkit.retrieval": ("featkit.tasks.index", "featkit.tasks.search"),
    "featkit.shards": ("featkit.data.shards", "featkit.data.shard_writer"),
}


class _MovedModule(types.ModuleType):
    """Stands in for an old module: attribute reads go to the modules its names moved to."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        for target in MOVED[self.__name__]:
            module = importlib.import_module(target)
            if hasattr(module, name):
                return getattr(module, name)
        raise AttributeError(f"module '{self.__name__}' has no attribute '{name}' (it moved to one of "
                             f"{', '.join(MOVED[self.__name__])})")  # fmt: skip

    def __dir__(self) -> list[str]:
        return sorted({n for t in MOVED[self.__name__] for n in getattr(importlib.import_module(t), "__all__", ())})


class _MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old paths of :data:`MOVED` (and nothing else) for the import system."""

    def find_spec(self, fullname, path=None, target=None):
        return importlib.util.spec_from_loader(fullname, self) if fullname in MOVED else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return _MovedModule(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        warnings.warn(f"{module.__name__} moved to {', '.join(MOVED[module.__name__])}; the old path "
                      "works until featkit 0.3", DeprecationWarning, stacklevel=2)  # fmt: skip


def install() -> None:
    """Put the finder on :data:`sys.meta_path` (once)."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedFinder())

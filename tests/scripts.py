"""Loading the repository's example and benchmark scripts as modules in tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

#: The repository root (examples/, bench/ live here).
ROOT = Path(__file__).resolve().parents[1]


def load_script(path: Path) -> ModuleType:
    """Import a script file (e.g. ``examples/reproduce_paper.py``) as a module."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

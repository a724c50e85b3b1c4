"""The package's public face: every name in ``featkit.__all__`` resolves, and importing featkit is cheap."""

from __future__ import annotations

import subprocess
import sys

import featkit


def test_every_public_name_resolves_to_its_module_object():
    for name in featkit.__all__:
        value = getattr(featkit, name)
        assert value is not None
        if name != "__version__":
            assert value.__name__ == name and value.__module__.startswith("featkit."), name
    assert set(featkit.__all__) <= set(dir(featkit))


def test_import_featkit_loads_no_torch():
    code = "import sys, featkit; print('torch' in sys.modules, featkit.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", featkit.__version__]

"""featkit.io: atomic writes."""

from __future__ import annotations

import os
import stat

from featkit.io import write_json


def test_atomic_writes_leave_ordinary_permissions_and_no_temporary_file(tmp_path):
    previous = os.umask(0o022)
    try:
        write_json(tmp_path / "feats.json", {"rows": 1})
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(tmp_path / "feats.json").st_mode) == 0o644  # readable by the group, like any new file
    assert os.listdir(tmp_path) == ["feats.json"]

"""Nothing in featkit unpickles: a checkpoint crafted to run code on load never runs it."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest

import featkit
from featkit.runs.models import CONFIG_FILE, WEIGHTS_FILE, load_model
from featkit.errors import CheckpointError
from featkit.io import write_json


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


def test_pickle_payload_named_as_weights_is_refused_and_never_executed(tmp_path):
    marker = tmp_path / "executed.txt"
    run = tmp_path / "run"
    run.mkdir()
    write_json(run / CONFIG_FILE, {"encoder": {"name": "paper-cae", "args": {}}})
    (run / WEIGHTS_FILE).write_bytes(pickle.dumps(_Exploit(marker)))
    with pytest.raises(CheckpointError, match=WEIGHTS_FILE):
        load_model(run)
    assert not marker.exists()


def test_featkit_source_never_unpickles():
    root = Path(featkit.__file__).parent
    cli_root = Path(featkit.__file__).parent.parent / "cli"
    pattern = re.compile(r"\b(pickle\.loads?|torch\.load|cloudpickle|dill|joblib\.load|np\.load\([^)]*allow_pickle\s*=\s*True)")
    offenders = []
    for path in [*root.rglob("*.py"), *cli_root.rglob("*.py")]:
        for lineno, line in enumerate(path.read_text().splitlines(), start=1):
            if pattern.search(line):
                offenders.append(f"{path}:{lineno}: {line.strip()}")
    assert not offenders, "\n".join(offenders)

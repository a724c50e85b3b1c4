"""Exit codes and error lines across the whole CLI: 0 success, 1 failure, 2 usage error,
130 interrupted, and no Python traceback unless --debug asks for it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import featkit.features.extraction
from featkit.cli import main
from featkit.cli.app import app


def _command_paths() -> list[list[str]]:
    paths = [[info.name] for info in app.registered_commands]
    for group in app.registered_groups:
        paths += [[group.name, info.name] for info in group.typer_instance.registered_commands]
    return paths


@pytest.mark.parametrize("path", _command_paths(), ids=lambda p: " ".join(p))
def test_every_command_answers_help(path, capsys):
    assert main([*path, "--help"]) == 0
    assert "Usage" in capsys.readouterr().out


def _bad_inputs(tmp):
    text = tmp / "notes.txt"
    text.write_text("not features")
    bad_npy = tmp / "nan.npy"
    np.save(bad_npy, np.array([[np.nan, 1.0]], dtype=np.float32))
    missing = str(tmp / "missing")
    return [
        (["train", missing, "--epochs", "1", "--out", str(tmp / "run")], 1),
        (["train", "--loss", "pl+nosuchloss", "--epochs", "1", "--out", str(tmp / "run2")], 1),
        (["train", "--loss", "pl++sfl", "--epochs", "1", "--out", str(tmp / "run3")], 1),
        (["train", "--encoder", "nosuchencoder", "--epochs", "1", "--out", str(tmp / "run4")], 1),
        (["extract", missing, "-m", "pixels", "-o", str(tmp / "f.npy")], 1),
        (["extract", str(tmp), "-m", missing, "-o", str(tmp / "g.npy")], 1),
        (["index", str(text), "-o", str(tmp / "i.faiss")], 1),
        (["index", str(bad_npy), "-o", str(tmp / "j.faiss")], 1),
        (["cluster", str(bad_npy), "-k", "2"], 1),
        (["search", missing, str(bad_npy)], 1),
        (["match", missing, missing, "-m", "pixels", "-o", str(tmp / "m.png")], 1),
        (["evaluate", "retrieval", missing], 1),
        (["train", "--epochs", "not-a-number"], 2),
        (["extract"], 2),
        (["no-such-command"], 2),
    ]


def test_bad_inputs_give_one_line_errors_in_a_real_process(tmp_path):
    for args, expected in _bad_inputs(tmp_path):
        proc = subprocess.run([sys.executable, "-m", "featkit", *args], capture_output=True, text=True, timeout=120)
        assert proc.returncode == expected, (args, proc.returncode, proc.stderr)
        assert "Traceback" not in proc.stderr, (args, proc.stderr)
        if expected == 1:
            lines = proc.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: "), (args, proc.stderr)


def test_debug_shows_the_traceback(tmp_path):
    args = ["--debug", "extract", str(tmp_path / "missing"), "-m", "pixels", "-o", str(tmp_path / "f.npy")]
    proc = subprocess.run([sys.executable, "-m", "featkit", *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" in proc.stderr


def test_interrupt_exits_130(tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(featkit.features.extraction, "extract", interrupted)
    code = main(["extract", str(tmp_path), "-m", "pixels", "-o", str(tmp_path / "f.npy"), "--quiet"])
    assert code == 130
    assert "Traceback" not in capsys.readouterr().err

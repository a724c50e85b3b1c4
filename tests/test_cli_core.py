"""The CLI's global contract: help, listings, one-line errors and exit codes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from featkit.cli import main


def test_help_lists_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "losses" in out and "encoders" in out


def test_losses_lists_builtins(capsys):
    assert main(["losses"]) == 0
    out = capsys.readouterr().out
    assert "pl" in out and "sfl" in out and "featkit" in out


def test_unknown_command_is_usage_error():
    assert main(["no-such-command"]) == 2


def test_bad_plugin_module_is_one_line_error(capsys):
    assert main(["--plugin", "no_such_featkit_plugin", "losses"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no_such_featkit_plugin" in err[0] and "Traceback" not in err[0]


@pytest.mark.parametrize("args", [["--help"], ["losses", "--help"], ["encoders", "--help"]])
def test_console_script_answers_help(args):
    proc = subprocess.run([sys.executable, "-m", "featkit", *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "Usage" in proc.stdout


def test_flags_take_no_value(tmp_path, capsys):
    assert main(["--debug", "losses"]) == 0  # a value-taking --debug would swallow "losses"
    assert main(["--version"]) == 0 and "featkit" in capsys.readouterr().out
    missing = tmp_path / "missing"
    code = main(["extract", "-q", "--overwrite", "--resume", str(missing), "-m", "pixels", "-o", str(tmp_path / "x.npy")])
    err = capsys.readouterr().err
    assert code == 1 and "error:" in err and str(missing) in err  # IMAGES was not taken as a flag's value


_HELP_OF_EVERY_COMMAND = """
import sys
from featkit.cli import main
from featkit.cli.app import app

paths = [[c.name] for c in app.registered_commands] + [[g.name] for g in app.registered_groups]
paths += [[g.name, c.name] for g in app.registered_groups for c in g.typer_instance.registered_commands]
assert len(paths) >= 10, paths
for path in [[], *paths]:
    assert main([*path, "--help"]) == 0, path
print(sorted(m for m in ("torch", "faiss", "sklearn", "skimage", "timm", "numpy") if m in sys.modules))
"""


@pytest.fixture(scope="module")
def help_of_every_command() -> str:
    """What ``featkit --help`` and ``featkit COMMAND... --help`` print for every command and
    group, in one process."""
    proc = subprocess.run([sys.executable, "-c", _HELP_OF_EVERY_COMMAND], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_help_of_every_command_loads_no_heavy_library(help_of_every_command):
    """``--help`` stays instant: the CLI imports torch, faiss and scikit-learn only to do work."""
    assert help_of_every_command.strip().splitlines()[-1] == "[]"


def test_help_shows_flags_without_a_value(help_of_every_command):
    """Bool options are flags: no ``<bool>`` after ``--quiet``, ``--debug``, ``--help`` ..."""
    assert "--quiet" in help_of_every_command and "--debug" in help_of_every_command
    assert "<bool>" not in help_of_every_command

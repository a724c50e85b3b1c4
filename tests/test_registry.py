"""The registry and spec grammar: names, errors that list what exists, and plugin discovery."""

from __future__ import annotations

import textwrap
from types import SimpleNamespace
from unittest.mock import patch

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import featkit
from featkit.cli import main
from featkit.errors import DuplicateNameError, FeatkitError, SpecError, UnknownNameError
from featkit.losses import LOSSES, parse_spec
from featkit.registry import Registry

BUILTINS = ("pl", "sfl", "sfl-dog")


@pytest.fixture
def isolated_losses(monkeypatch):
    """LOSSES as it is now, restored afterwards (tests may register into it)."""
    monkeypatch.setattr(LOSSES, "_entries", dict(LOSSES._entries))
    return LOSSES


# -- spec grammar ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, terms",
    [
        ("pl", [(1.0, "pl")]),
        ("pl+sfl", [(1.0, "pl"), (1.0, "sfl")]),
        (" pl + 0.5 * sfl ", [(1.0, "pl"), (0.5, "sfl")]),
        ("2*sfl-dog+1e-3*pl", [(2.0, "sfl-dog"), (0.001, "pl")]),
        (".25*sfl", [(0.25, "sfl")]),
    ],
)
def test_parse_spec_valid(spec, terms):
    assert parse_spec(spec) == terms


@pytest.mark.parametrize(
    "spec", ["", "  ", "pl++sfl", "+pl", "pl+", "0.5*", "*pl", "0.5*+pl", "pl*0.5", "-1*pl", "1pl"]
)
def test_malformed_spec_lists_available_names(spec):
    with pytest.raises(SpecError) as info:
        parse_spec(spec)
    message = str(info.value)
    assert "Available losses" in message and all(name in message for name in BUILTINS)


def test_repeated_term_is_rejected():
    with pytest.raises(SpecError, match="appears twice"):
        parse_spec("pl+0.5*pl")


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.text(alphabet="pl sfdog-+*.0123456789eE", max_size=24)))
def test_parse_spec_parses_or_raises_spec_error(spec):
    try:
        terms = parse_spec(spec)
    except SpecError:
        return
    assert terms and all(
        isinstance(w, float) and w >= 0 and isinstance(n, str) and n for w, n in terms
    )
    assert len({n for _, n in terms}) == len(terms)


def test_unknown_name_lists_available_names():
    with pytest.raises(UnknownNameError) as info:
        featkit.create_loss("pl+nosuchloss")
    message = str(info.value)
    assert "'nosuchloss'" in message and all(name in message for name in BUILTINS)


def test_bad_options_are_spec_errors():
    with pytest.raises(SpecError, match="sfl"):
        featkit.create_loss("sfl", scales=(0.8, -1.0))
    with pytest.raises(SpecError, match="padding"):
        featkit.create_loss("sfl-dog", padding="mirror")


def test_duplicate_registration_lists_names(isolated_losses):
    with pytest.raises(DuplicateNameError) as info:

        @featkit.register_loss("sfl")
        def another_sfl():
            return torch.nn.MSELoss()

    assert "already registered by featkit" in str(info.value)
    assert all(name in str(info.value) for name in BUILTINS)


def test_register_loss_decorator_makes_name_usable(isolated_losses):
    @featkit.register_loss("l1-test")
    def l1():
        """Mean absolute error (a test loss)."""
        return torch.nn.L1Loss()

    assert "l1-test" in featkit.list_losses()
    entry = LOSSES.get("l1-test")
    assert entry.summary == "Mean absolute error (a test loss)." and entry.source == f"module {l1.__module__}"
    x, y = torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4)
    total, parts = featkit.create_loss("pl+2*l1-test").evaluate(x, y)
    assert float(parts["l1-test"]) == 1.0 and float(total) == pytest.approx(1.5 + 2.0)


# -- entry points --------------------------------------------------------------------------------


class FakeEntryPoint:
    def __init__(self, name, value, load, dist="fake-dist"):
        self.name, self.value, self._load = name, value, load
        self.dist = SimpleNamespace(name=dist)

    def load(self):
        return self._load()


def _good_factory():
    """A good plugin loss."""
    return torch.nn.MSELoss()


def _broken():
    raise ImportError("No module named 'featkit_missing_dependency'")


def test_entry_points_are_loaded_lazily_and_failures_isolated():
    registry = Registry("loss", entry_point_group="featkit.losses")
    eps = [
        FakeEntryPoint("broken", "featkit_broken:make", _broken, dist="featkit-broken"),
        FakeEntryPoint("good", "featkit_good:make", lambda: _good_factory, dist="featkit-good"),
    ]
    with patch("importlib.metadata.entry_points", return_value=eps) as entry_points:
        assert entry_points.call_count == 0  # nothing is imported before the first lookup
        assert registry.names() == ["good"]
        assert entry_points.call_args.kwargs == {"group": "featkit.losses"}
        registry.names()
        assert entry_points.call_count == 1
    assert registry.get("good").source == "plugin featkit-good"
    assert registry.get("good").summary == "A good plugin loss."
    assert set(registry.plugin_errors) == {"broken"}
    assert "featkit_missing_dependency" in registry.plugin_errors["broken"]
    with pytest.raises(UnknownNameError, match=r"broken \(ImportError"):
        registry.get("broken")


def test_entry_point_module_that_registers_on_import():
    registry = Registry("loss", entry_point_group="featkit.losses")

    def load_module():
        registry.add("from-module", _good_factory)
        return textwrap  # a module object: nothing more to register

    eps = [FakeEntryPoint("mod", "featkit_mod", load_module, dist="featkit-mod")]
    with patch("importlib.metadata.entry_points", return_value=eps):
        assert registry.names() == ["from-module"]
    assert registry.get("from-module").source == "plugin featkit-mod"
    assert not registry.plugin_errors


def test_plugin_colliding_with_builtin_is_reported_not_fatal():
    registry = Registry("loss", entry_point_group="featkit.losses")
    registry.add("pl", _good_factory)
    eps = [
        FakeEntryPoint("pl", "x:y", lambda: _good_factory),
        FakeEntryPoint("ok", "x:z", lambda: _good_factory),
    ]
    with patch("importlib.metadata.entry_points", return_value=eps):
        assert registry.names() == ["ok", "pl"]
    assert "already registered" in registry.plugin_errors["pl"]
    assert registry.get("pl").source == f"module {_good_factory.__module__}"  # the first one stays


# -- --plugin package.module -------------------------------------------------------------------------


def test_cli_plugin_module_registers_losses(tmp_path, monkeypatch, capsys, isolated_losses):
    (tmp_path / "fkplug.py").write_text(
        textwrap.dedent(
            '''
            import torch
            from featkit import register_loss

            @register_loss("l1x")
            def l1x():
                """Mean absolute error."""
                return torch.nn.L1Loss()
            '''
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["--plugin", "fkplug", "losses"]) == 0
    out = capsys.readouterr().out
    assert "l1x" in out and "module fkplug" in out and "Mean absolute error" in out
    assert LOSSES.get("l1x").source == "module fkplug"


def test_cli_plugin_module_that_fails_is_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "fkbroken.py").write_text("raise RuntimeError('plugin exploded')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["--plugin", "fkbroken", "losses"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fkbroken" in err[0] and "plugin exploded" in err[0]


def test_featkit_error_base():
    assert issubclass(SpecError, FeatkitError) and issubclass(UnknownNameError, FeatkitError)

"""Named registries with lazy plugin discovery through entry points.

One :class:`Registry` per kind (losses, encoders). Built-ins register with a decorator
beside their definition; third-party packages declare an entry point in the registry's
group (``featkit.losses`` or ``featkit.encoders``) whose target is either a module that
registers on import or a factory callable registered under the entry point's name.
Entry points are loaded on the first lookup, each in isolation: a plugin that fails to
import is recorded in :attr:`Registry.plugin_errors` and does not stop the others.

Examples:
    >>> reg = Registry("widget", entry_point_group=None)
    >>> @reg.register("tiny")
    ... def tiny(size: int = 1):
    ...     '''A tiny widget.'''
    ...     return size
    >>> reg.create("tiny", size=3)
    3
    >>> reg.names()
    ['tiny']
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from featkit.errors import DuplicateNameError, FeatkitError, UnknownNameError

__all__ = ["Entry", "Registry", "import_plugin_module"]

BUILTIN_SOURCE = "featkit"


@dataclass(frozen=True)
class Entry:
    """A registered factory.

    Attributes:
        name: the public key, e.g. ``"sfl"``.
        factory: callable returning the object (an ``nn.Module`` for losses and encoders).
        summary: first line of the factory's docstring.
        source: ``"featkit"`` for built-ins, ``"plugin <dist>"`` or ``"module <name>"`` otherwise.
    """

    name: str
    factory: Callable[..., Any]
    summary: str
    source: str


def _summary(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


class Registry:
    """A name -> factory map for one kind of component.

    Args:
        kind: what is registered, used in messages (``"loss"``, ``"encoder"``).
        entry_point_group: entry-point group scanned lazily for plugins, or ``None``.
    """

    def __init__(self, kind: str, entry_point_group: str | None) -> None:
        self.kind = kind
        self.kinds = kind + ("es" if kind.endswith("s") else "s")
        self.entry_point_group = entry_point_group
        self._entries: dict[str, Entry] = {}
        self._plugin_errors: dict[str, str] = {}
        self._plugins_loaded = entry_point_group is None
        self._source = BUILTIN_SOURCE
        self._prefixes: dict[str, Callable[..., Any]] = {}

    # -- registration -------------------------------------------------------------------
    def register(self, name: str | None = None, *, summary: str | None = None) -> Callable:
        """Decorator registering a factory under ``name`` (default: the function's name).

        Raises:
            DuplicateNameError: if the name is already registered.
        """

        def decorator(factory: Callable[..., Any]) -> Callable[..., Any]:
            self.add(name or factory.__name__, factory, summary=summary)
            return factory

        return decorator

    def add(self, name: str, factory: Callable[..., Any], *, summary: str | None = None) -> None:
        """Register ``factory`` under ``name`` (the non-decorator form of :meth:`register`)."""
        if name in self._entries:
            raise DuplicateNameError(
                f"{self.kind} '{name}' is already registered by {self._entries[name].source}; "
                f"choose another name. Registered {self.kinds}: {', '.join(sorted(self._entries))}"
            )
        source = self._source
        module = getattr(factory, "__module__", None) or ""
        if source == BUILTIN_SOURCE and module.split(".")[0] != "featkit":
            source = f"module {module}"  # registered by user code imported some other way
        self._entries[name] = Entry(name, factory, summary or _summary(factory), source)

    def register_prefix(self, prefix: str, factory: Callable[..., Any]) -> None:
        """Route every name ``"<prefix>:<rest>"`` to ``factory(rest, **kwargs)``.

        Used for open-ended families such as ``timm:<model>``.
        """
        self._prefixes[prefix] = factory

    @contextlib.contextmanager
    def _registering_as(self, source: str) -> Iterator[None]:
        previous, self._source = self._source, source
        try:
            yield
        finally:
            self._source = previous

    # -- plugins ------------------------------------------------------------------------
    def _load_entry_points(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for ep in importlib.metadata.entry_points(group=self.entry_point_group):
            dist = getattr(getattr(ep, "dist", None), "name", None) or ep.value
            with self._registering_as(f"plugin {dist}"):
                try:
                    target = ep.load()
                    if callable(target) and not inspect.ismodule(target):
                        self.add(ep.name, target)
                except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop others
                    self._plugin_errors[ep.name] = f"{type(exc).__name__}: {exc}"

    @property
    def plugin_errors(self) -> MappingProxyType:
        """Read-only map of entry-point name -> why that plugin failed to load."""
        self._load_entry_points()
        return MappingProxyType(self._plugin_errors)

    # -- lookup -------------------------------------------------------------------------
    def names(self) -> list[str]:
        """Sorted registered names, plugins included."""
        self._load_entry_points()
        return sorted(self._entries)

    def entries(self) -> list[Entry]:
        """All entries, sorted by name."""
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: str) -> bool:
        self._load_entry_points()
        return name in self._entries or self._prefix_of(name) is not None

    def _prefix_of(self, name: str) -> str | None:
        prefix = name.split(":", 1)[0] if ":" in name else None
        return prefix if prefix in self._prefixes else None

    def get(self, name: str) -> Entry:
        """The entry registered under ``name``.

        Raises:
            UnknownNameError: naming the available entries and any plugin that failed to load.
        """
        self._load_entry_points()
        if name in self._entries:
            return self._entries[name]
        prefix = self._prefix_of(name)
        if prefix is not None:
            rest = name.split(":", 1)[1]
            factory = self._prefixes[prefix]
            return Entry(name, lambda **kw: factory(rest, **kw), _summary(factory), BUILTIN_SOURCE)
        available = ", ".join(self.names() + [f"{p}:<name>" for p in sorted(self._prefixes)])
        message = f"unknown {self.kind} '{name}'. Available {self.kinds}: {available}"
        if self._plugin_errors:
            failed = "; ".join(f"{k} ({v})" for k, v in sorted(self._plugin_errors.items()))
            message += f". Plugins that failed to load: {failed}"
        raise UnknownNameError(message)

    def create(self, name: str, **kwargs: Any) -> Any:
        """Build the object registered under ``name`` with ``kwargs``."""
        return self.get(name).factory(**kwargs)


def import_plugin_module(module_name: str, registries: list[Registry]) -> None:
    """Import a local plugin module (``--plugin package.module``) that registers on import;
    what it registers is listed as coming from ``module <name>``.

    Raises:
        FeatkitError: if the module cannot be imported, naming it and why.
    """
    with contextlib.ExitStack() as stack:
        for registry in registries:
            stack.enter_context(registry._registering_as(f"module {module_name}"))
        try:
            importlib.import_module(module_name)
        except Exception as exc:  # noqa: BLE001 - any import-time failure is the plugin's
            raise FeatkitError(f"cannot import plugin module '{module_name}': {type(exc).__name__}: {exc}") from exc

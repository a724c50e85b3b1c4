"""The encoder registry: CAEs of the paper and beyond, ``timm:<model>``, and plugins."""

from __future__ import annotations

from typing import Any

from featkit.registry import Registry

__all__ = ["ENCODERS", "create_encoder", "list_encoders", "register_encoder"]

#: Every encoder featkit knows: built-ins, entry points in group ``featkit.encoders``, modules.
ENCODERS = Registry("encoder", entry_point_group="featkit.encoders")


def register_encoder(name: str | None = None, *, summary: str | None = None):
    """Decorator registering an autoencoder factory under ``name``.

    The factory takes keyword arguments that JSON can hold and returns an
    :class:`~featkit.encoders.base.AutoEncoder`.
    """
    return ENCODERS.register(name, summary=summary)


def list_encoders() -> list[str]:
    """Names of every registered encoder, plugins included (plus the ``timm:<name>`` family)."""
    return ENCODERS.names()


def create_encoder(name: str, **kwargs: Any):
    """Build the autoencoder registered under ``name``.

    The name and arguments are recorded in ``model.config`` so a checkpoint can rebuild it.

    Args:
        name: e.g. ``"paper-cae"``, ``"cae-wide"``, ``"timm:resnet18"``.
        **kwargs: the factory's options; ``None`` values mean "the default" and are dropped.

    Raises:
        UnknownNameError: listing the registered encoders.
    """
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    model = ENCODERS.create(name, **kwargs)
    model.config = {"name": name, "args": kwargs}
    return model
